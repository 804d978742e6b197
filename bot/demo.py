"""`campusbot demo`: a fresh database with the bundled sample inbox run through the pipeline."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel, col, select

from bot import migrate
from bot.acknowledge import AUTO_TEMPLATES
from bot.app import App
from bot.config import Settings
from bot.crud import templates
from bot.errors import ConfigError
from bot.incident_reports import REPORT_TEMPLATES
from bot.ingest import ingest_file
from bot.models import Case, Message, OutboundMessage, OutboxStatus
from bot.paths import PILOT_METRICS, REPORTS_DIR, SAMPLE_MESSAGES

DEFAULT_DATABASE_URL = Settings.model_fields["database_url"].default


@dataclass
class DemoSummary:
    messages: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    per_channel: Counter[str] = field(default_factory=Counter)
    per_scenario: Counter[str] = field(default_factory=Counter)
    urgent_cases: int = 0
    risk_cases: int = 0
    needs_human: int = 0
    acknowledgements_queued: int = 0
    reports: list[Path] = field(default_factory=list)
    console_password: str = ""


def reset_database(app: App, *, force: bool) -> None:
    """Start from empty. Refuses anything but the default SQLite file unless forced."""
    url = app.settings.database_url
    if url != DEFAULT_DATABASE_URL and not force:
        raise ConfigError(
            f"refusing to reset {make_url(url).render_as_string(hide_password=True)}: the demo "
            "only wipes the default SQLite file; pass --force to wipe this database"
        )
    with app.db.engine.begin() as connection:
        SQLModel.metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    migrate.upgrade(app.db)


def run_demo(app: App, *, force: bool = False, sample: Path = SAMPLE_MESSAGES) -> DemoSummary:
    reset_database(app, force=force)
    with app.db.session() as session:
        for name in (*AUTO_TEMPLATES, *REPORT_TEMPLATES):
            templates.approve(
                session,
                name=name,
                by="demo-setup",
                at=app.clock.now(),
                account=app.settings.account,
            )
    password = create_demo_users(app)
    ingested, _ = ingest_file(app, sample)
    summary = DemoSummary(
        messages=ingested.stored,
        duplicates=ingested.duplicates,
        dead_lettered=ingested.dead_lettered,
    )
    with app.db.session() as session:
        for channel, count in session.exec(
            select(Message.channel, func.count()).group_by(Message.channel)
        ):
            summary.per_channel[channel] = count
        for scenarios in session.exec(select(Message.scenarios)):
            summary.per_scenario.update(scenarios or ["other"])
        summary.urgent_cases = session.exec(
            select(func.count()).select_from(Case).where(col(Case.urgent))
        ).one()
        summary.risk_cases = session.exec(
            select(func.count()).select_from(Case).where(col(Case.risk))
        ).one()
        summary.needs_human = session.exec(
            select(func.count()).select_from(Case).where(col(Case.needs_human))
        ).one()
        summary.acknowledgements_queued = session.exec(
            select(func.count())
            .select_from(OutboundMessage)
            .where(OutboundMessage.status == OutboxStatus.QUEUED)
        ).one()
    summary.reports = write_demo_reports(app)
    summary.console_password = password
    return summary


DEMO_USERS = {"demo.officer": "officer", "demo.comms": "comms_officer", "demo.analyst": "analyst"}


def create_demo_users(app: App) -> str:
    """Console accounts for the demo database only, with one fresh random password."""
    import secrets

    from bot.crud import users
    from bot.web.auth import set_password

    password = secrets.token_urlsafe(12)
    with app.db.session() as session:
        for username, role in DEMO_USERS.items():
            users.add(session, username=username, roles=[role], at=app.clock.now(), by="demo-setup")
            set_password(
                session, username=username, password=password, at=app.clock.now(), by="demo-setup"
            )
    return password


def write_demo_reports(app: App) -> list[Path]:
    """The sample week's inbox, and the 2017 pilot's published reach figures, as HTML."""
    from datetime import date

    from bot.metrics_import import import_metrics, read_metrics_file
    from bot.report_render import render_html
    from bot.reports import ReportQuery, build_report
    from schedules.campaigns import load_campaigns

    campaigns = load_campaigns(app.settings.campaigns_dir)
    REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    with app.db.session() as session:
        import_metrics(session, read_metrics_file(PILOT_METRICS), at=app.clock.now())
        for name, start, end in [
            ("sample-week", date(2026, 11, 16), date(2026, 11, 22)),
            ("pilot-2017", date(2017, 9, 18), date(2017, 11, 23)),
        ]:
            built = build_report(
                session, ReportQuery(start=start, end=end, tz=app.settings.tz), campaigns
            )
            path = REPORTS_DIR / f"{name}.html"
            path.write_text(render_html(built), encoding="utf-8")
            written.append(path)
    return written
