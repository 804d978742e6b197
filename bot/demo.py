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
from bot.ingest import ingest_file
from bot.models import Case, Message, OutboundMessage, OutboxStatus
from bot.paths import SAMPLE_MESSAGES

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
        for name in AUTO_TEMPLATES:
            templates.approve(session, name=name, by="demo-setup", at=app.clock.now())
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
    return summary
