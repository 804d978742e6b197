"""`campusbot`: the command line. ``main(argv)`` runs it in-process and returns the exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, cast

import typer
from rich.table import Table

from bot.cli_common import State, err, out, state_of
from bot.cli_credentials import credentials_app
from bot.cli_meetings import meetings_app
from bot.cli_partners import partners_app
from bot.cli_posts import alerts_app, campaigns_app, posts_app, users_app
from bot.cli_privacy import privacy_app
from bot.cli_reports import metrics_app, report
from bot.cli_surveys import surveys_app
from bot.cli_tokens import tokens_app
from bot.errors import BotError, ConfigError

if TYPE_CHECKING:
    from bot.models import Case, Message

# Commands import what they use when they run, so `campusbot classify` does not pay for
# the database stack and `campusbot inbox` does not pay for spaCy.

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Campus police engagement bot (@UCLanCampusCops).",
)
config_app = typer.Typer(no_args_is_help=True, help="Check the configuration.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")
inbox_app = typer.Typer(no_args_is_help=True, help="The triage inbox.")
deadletter_app = typer.Typer(no_args_is_help=True, help="Payloads that could not be taken in.")
templates_app = typer.Typer(no_args_is_help=True, help="Automatic reply templates.")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")
classifier_app = typer.Typer(no_args_is_help=True, help="Train and evaluate the classifier.")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(inbox_app, name="inbox")
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(templates_app, name="templates")
app.add_typer(audit_app, name="audit")
app.add_typer(classifier_app, name="classifier")

PRIORITY_ORDER = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(posts_app, name="posts")
app.add_typer(users_app, name="users")
app.add_typer(metrics_app, name="metrics")
app.add_typer(meetings_app, name="meetings")
app.add_typer(privacy_app, name="privacy")
app.add_typer(surveys_app, name="surveys")
app.add_typer(partners_app, name="partners")
app.add_typer(alerts_app, name="alerts")
app.add_typer(tokens_app, name="tokens")
app.add_typer(credentials_app, name="credentials")
app.command()(report)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="config.yaml to use (default ./config.yaml or $CAMPUSBOT_CONFIG)",
            envvar="CAMPUSBOT_CONFIG",
        ),
    ] = None,
) -> None:
    ctx.obj = State(config=config)
    ctx.call_on_close(lambda: ctx.obj._app.close() if ctx.obj._app else None)


# -- config ------------------------------------------------------------------------------
@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Say what each enabled channel is missing, without printing any secret."""
    settings = state_of(ctx).settings
    problems = 0
    for name, channel in settings.channels().items():
        if not channel.enabled:
            out.print(f"{name}: disabled")
            continue
        missing = channel.missing()
        if missing:
            problems += 1
            envs = ", ".join(f"CAMPUSBOT_{name.upper()}__{m.upper()}" for m in missing)
            out.print(f"{name}: enabled, MISSING {', '.join(missing)} (set {envs})")
        else:
            out.print(f"{name}: enabled, complete")
    out.print(f"database: {settings.database_url.split('://')[0]}")
    if problems:
        raise typer.Exit(1)


# -- db ------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from bot import migrate

    state = state_of(ctx)
    migrate.upgrade(state.app.db, revision)
    out.print(f"database at revision {migrate.current_revision(state.app.db)}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's revision and the code's latest."""
    from bot import migrate

    state = state_of(ctx)
    current = migrate.current_revision(state.app.db)
    head = migrate.head_revision()
    out.print(f"current {current or '(empty)'}, latest {head}")
    if current != head:
        raise typer.Exit(1)


# -- demo and ingest -----------------------------------------------------------------------
@app.command()
def demo(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option(help="Also wipe a non-default database")] = False,
) -> None:
    """Reset the database, replay the bundled sample inbox and print a summary."""
    from bot.demo import run_demo

    summary = run_demo(state_of(ctx).app, force=force)
    table = Table(title="Demo: sample inbox after the pipeline", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("messages stored", str(summary.messages))
    for channel, count in sorted(summary.per_channel.items()):
        table.add_row(f"  channel {channel}", str(count))
    for scenario, count in sorted(summary.per_scenario.items()):
        table.add_row(f"  scenario {scenario}", str(count))
    table.add_row("urgent cases", str(summary.urgent_cases))
    table.add_row("risk-to-life cases", str(summary.risk_cases))
    table.add_row("cases needing a person (not English)", str(summary.needs_human))
    table.add_row("acknowledgements queued", str(summary.acknowledgements_queued))
    table.add_row("dead letters", str(summary.dead_lettered))
    out.print(table)
    for path in summary.reports:
        out.print(f"report written: {path}")
    out.print(
        f"console sign-in (demo database only): demo.officer, demo.comms or demo.analyst, "
        f"password {summary.console_password}"
    )
    out.print("Next: `campusbot inbox list` or `campusbot serve`, then open http://127.0.0.1:8000/")


@app.command()
def ingest(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Option(
            "--file", exists=True, dir_okay=False, help="JSONL file, one message per line"
        ),
    ],
    channel: Annotated[str, typer.Option(help="Source channel (replay)")] = "replay",
) -> None:
    """Ingest a file into the configured database; bad lines go to the dead letters."""
    from bot.ingest import ingest_file

    if channel != "replay":
        raise typer.BadParameter("only the replay channel reads files", param_hint="--channel")
    ingested, processed = ingest_file(state_of(ctx).app, file)
    out.print(
        f"read {ingested.received}, stored {ingested.stored}, duplicates "
        f"{ingested.duplicates}, dead-lettered {ingested.dead_lettered}; processed "
        f"{processed.processed}, acknowledgements {processed.acknowledgements}"
    )
    if ingested.dead_lettered:
        err.print(
            f"{ingested.dead_lettered} line(s) could not be read; see `campusbot deadletter list`"
        )
        raise typer.Exit(1)


# -- inbox ---------------------------------------------------------------------------------
@inbox_app.command("list")
def inbox_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
    status: Annotated[str | None, typer.Option(help="Only cases in this status")] = None,
    limit: int = 200,
) -> None:
    """The inbox, most serious first: P1 risk to life, P2 urgent, P3 reports, P4 other."""
    from sqlmodel import col, select

    from bot.models import Case, Message

    state = state_of(ctx)
    with state.app.db.session() as session:
        query = select(Message, Case).join(Case, col(Message.case_id) == col(Case.id))
        if status:
            query = query.where(Case.status == status)
        rows = list(session.exec(query))
    rows.sort(key=lambda mc: (PRIORITY_ORDER[mc[1].priority], -mc[0].received_at.timestamp()))
    rows = rows[:limit]
    if as_json:
        for message, case in rows:
            out.print(json.dumps(_inbox_row(message, case), ensure_ascii=False), markup=False)
        return
    table = Table(show_lines=False)
    for column in ("ref", "pri", "status", "channel", "scenarios", "intent", "text"):
        table.add_column(column)
    for message, case in rows:
        table.add_row(
            case.reference or "",
            case.priority,
            case.status,
            message.channel,
            ",".join(message.scenarios) or "other",
            message.intent or "",
            (message.text[:70] + "…") if len(message.text) > 70 else message.text,
        )
    out.print(table)


def _inbox_row(message: Message, case: Case) -> dict[str, Any]:
    return {
        "reference": case.reference,
        "priority": case.priority,
        "status": case.status,
        "channel": message.channel,
        "external_id": message.external_id,
        "text": message.text,
        "scenarios": message.scenarios,
        "urgent": message.urgent,
        "risk": message.risk,
        "intent": message.intent,
        "language": message.language,
        "received_at": message.received_at.isoformat(),
    }


# -- dead letters --------------------------------------------------------------------------
@deadletter_app.command("list")
def deadletter_list(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Resolved too")] = False,
) -> None:
    """Pending dead letters with their reasons (raw bytes are kept, not printed)."""
    from bot.crud import deadletters
    from bot.models import DeadLetterStatus

    state = state_of(ctx)
    with state.app.db.session() as session:
        letters = deadletters.list_letters(
            session, status=None if show_all else DeadLetterStatus.PENDING, limit=10_000
        )
        for letter in letters:
            out.print(
                f"{letter.id}\t{letter.status}\t{letter.source}\t{letter.origin or ''}\t"
                f"{letter.reason}",
                markup=False,
            )
        out.print(f"{len(letters)} dead letter(s)")


@deadletter_app.command("retry")
def deadletter_retry(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(help="Ids (default all)")] = None,
) -> None:
    """Parse pending dead letters again, through the parser that refused them."""
    from bot.ingest import retry_dead_letters

    report = retry_dead_letters(state_of(ctx).app, ids or None)
    out.print(
        f"resolved {report.resolved}, still failing {report.still_failing}, "
        f"no parser {report.unknown_source}"
    )
    if report.still_failing or report.unknown_source:
        raise typer.Exit(1)


# -- templates -----------------------------------------------------------------------------
def _automatic_templates() -> tuple[str, ...]:
    """Every template the bot sends from without a person: acknowledgements, report replies."""
    from bot.acknowledge import AUTO_TEMPLATES
    from bot.incident_reports import REPORT_TEMPLATES

    return (*AUTO_TEMPLATES, *REPORT_TEMPLATES)


@templates_app.command("list")
def templates_list(ctx: typer.Context) -> None:
    """Automatic reply templates and whether their current wording is approved."""
    from bot.crud import templates

    state = state_of(ctx)
    with state.app.db.session() as session:
        for name in _automatic_templates():
            status = (
                "approved"
                if templates.is_approved(session, name, state.settings.account)
                else "NOT APPROVED"
            )
            out.print(f"{name}\t{status}")


@templates_app.command("approve")
def templates_approve(
    ctx: typer.Context, name: str, by: Annotated[str, typer.Option(help="Who approves (recorded)")]
) -> None:
    """Approve the current wording of an automatic reply template."""
    from bot.crud import templates

    names = _automatic_templates()
    if name not in names:
        raise typer.BadParameter(f"choose one of {', '.join(names)}", param_hint="NAME")
    state = state_of(ctx)
    with state.app.db.session() as session:
        templates.approve(
            session, name=name, by=by, at=state.app.clock.now(), account=state.settings.account
        )
    out.print(f"approved {name} as worded now")


# -- audit ---------------------------------------------------------------------------------
@audit_app.command("verify")
def audit_verify(ctx: typer.Context) -> None:
    """Check the hash chain; exits 1 and names the first entry that was altered."""
    from bot.crud import audit

    state = state_of(ctx)
    with state.app.db.session() as session:
        result = audit.verify(session)
    if result.ok:
        out.print(f"audit log intact: {result.entries} entries")
        return
    err.print(f"audit log TAMPERED: entry {result.first_bad_id} does not match its chain")
    raise typer.Exit(1)


# -- classifier ----------------------------------------------------------------------------
@app.command()
def classify(
    ctx: typer.Context,
    input_path: Annotated[
        str, typer.Option("--input", help="JSONL with a text field; - for stdin")
    ],
    output_path: Annotated[str, typer.Option("--output", help="JSONL out; - for stdout")] = "-",
    workers: Annotated[
        int | None, typer.Option(min=1, help="Processes to classify in (default: one per core)")
    ] = None,
) -> None:
    """Tag each line's text with scenarios, urgent, risk, intent and scores."""
    from rich.progress import Progress

    from classifiers.jsonl_job import classify_stream
    from classifiers.loader import load_classifier

    classifier = load_classifier(state_of(ctx).settings.classifier)

    def broken(number: int, reason: str) -> None:
        err.print(f"line {number}: {reason}; skipped", markup=False)

    with _open_text(input_path, "r") as source, _open_text(output_path, "w") as sink:
        if err.is_terminal:
            with Progress(console=err, transient=True) as progress:
                task = progress.add_task("classifying", total=None)
                report = classify_stream(
                    classifier,
                    source,
                    sink,
                    on_error=broken,
                    on_progress=lambda n: progress.advance(task, n),
                    workers=workers,
                )
        else:
            report = classify_stream(classifier, source, sink, on_error=broken, workers=workers)
    err.print(f"classified {report.written} line(s), skipped {report.broken}")
    if report.broken:
        raise typer.Exit(1)


@contextmanager
def _open_text(path: str, mode: str) -> Iterator[TextIO]:
    if path == "-":
        yield sys.stdin if mode == "r" else sys.stdout
        return
    try:
        handle = cast(TextIO, open(path, mode, encoding="utf-8", newline=""))  # noqa: SIM115
    except OSError as exc:
        raise typer.BadParameter(f"cannot open {path}: {exc.strerror}") from None
    with handle:
        yield handle


@classifier_app.command("split")
def classifier_split() -> None:
    """Rebuild train/dev/test from classifiers/data/raw (stable, hash-based)."""
    from classifiers.dataset import load_raw, write_splits

    sizes = write_splits(load_raw())
    out.print(", ".join(f"{name} {count}" for name, count in sizes.items()))


@classifier_app.command("train")
def classifier_train(
    output: Annotated[Path | None, typer.Option(help="Where to write the model")] = None,
) -> None:
    """Rebuild the model deterministically from the committed splits."""
    from classifiers.model import MODEL_DIR
    from classifiers.train import train_and_save

    result = train_and_save(output or MODEL_DIR)
    report = result.dev_report
    out.print(
        f"trained {result.classifier.name} ({result.epochs} epochs) -> {output or MODEL_DIR}; "
        f"dev macro-F1 {report.scenario_macro_f1}, intent {report.intent_accuracy}, "
        f"urgent recall {report.urgent.recall}, risk recall {report.risk.recall}"
    )


@classifier_app.command("evaluate")
def classifier_evaluate(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Labelled JSONL")],
    as_json: Annotated[Path | None, typer.Option("--json", help="Also write figures here")] = None,
) -> None:
    """Precision, recall and F1 per label, macro-F1, intent accuracy and confusion."""
    from classifiers.dataset import read_jsonl
    from classifiers.loader import load_classifier
    from classifiers.metrics import evaluate

    try:
        examples = list(read_jsonl(data))
    except (ValueError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from None
    report = evaluate(load_classifier(state_of(ctx).settings.classifier), examples)
    table = Table(title=f"{data.name}: {report.examples} examples")
    for column in ("label", "precision", "recall", "f1", "support"):
        table.add_column(column)
    for name, figures in [
        *report.scenarios.items(),
        ("urgent", report.urgent),
        ("risk", report.risk),
        *report.intents.items(),
    ]:
        table.add_row(
            name,
            f"{figures.precision:.3f}",
            f"{figures.recall:.3f}",
            f"{figures.f1:.3f}",
            str(figures.support),
        )
    out.print(table)
    out.print(
        f"scenario macro-F1 {report.scenario_macro_f1:.4f}; intent accuracy "
        f"{report.intent_accuracy:.4f}"
    )
    confusion = Table(title="intent confusion (rows: true, columns: predicted)")
    confusion.add_column("")
    for label in report.confusion:
        confusion.add_column(label[:10])
    for label, row in report.confusion.items():
        confusion.add_row(label, *(str(v) for v in row.values()))
    out.print(confusion)
    if as_json is not None:
        as_json.write_text(json.dumps(report.as_json(), indent=2))


@app.command()
def poll(
    ctx: typer.Context,
    channel: Annotated[str, typer.Argument(help="twitter")],
    once: Annotated[bool, typer.Option(help="One round, then exit")] = True,
) -> None:
    """Read what arrived on a channel since the last round, store it, and triage it."""
    from bot.errors import AuthError, RateLimited
    from bot.polling import poll_once

    state = state_of(ctx)
    channels = state.app.channels()
    if channel not in channels:
        settings = state.settings.channels().get(channel)
        why = (
            "unknown channel"
            if settings is None
            else "disabled in config"
            if not settings.enabled
            else f"missing {', '.join(settings.missing())}"
        )
        raise typer.BadParameter(
            f"{channel}: {why} (see `campusbot config check`)", param_hint="CHANNEL"
        )
    try:
        report = poll_once(state.app, channel, channels[channel])
    except RateLimited as exc:
        err.print(
            f"{channel}: rate limited until {exc.retry_at:%H:%M:%S} UTC; nothing lost, "
            "try again then"
        )
        raise typer.Exit(1) from None
    except AuthError as exc:
        err.print(f"{channel}: {exc}")
        raise typer.Exit(1) from None
    processed = state.app.pipeline.process_pending()
    ingested = report.ingested
    out.print(
        f"{channel}: stored {ingested.stored}, duplicates {ingested.duplicates}, "
        f"dead-lettered {ingested.dead_lettered}; processed {processed.processed}"
        + ("" if report.complete else "; more waiting, polling again will continue")
    )


channels_app = typer.Typer(no_args_is_help=True, help="The connected platforms.")
app.add_typer(channels_app, name="channels")


@channels_app.command("status")
def channels_status(ctx: typer.Context) -> None:
    """Each configured channel's health: credentials accepted, API reachable, rate limits."""
    state = state_of(ctx)
    unhealthy = 0
    for name, settings in state.settings.channels().items():
        if not settings.enabled:
            out.print(f"{name}: disabled")
            continue
        channel = state.app.channels().get(name)
        if channel is None:
            unhealthy += 1
            out.print(f"{name}: not configured (missing {', '.join(settings.missing())})")
            continue
        status = channel.check()
        unhealthy += status.health != "ok"
        out.print(f"{name}: {status.health} {status.detail}".rstrip(), markup=False)
    if unhealthy:
        raise typer.Exit(1)


@channels_app.command("insights")
def channels_insights(
    ctx: typer.Context,
    channel: Annotated[str, typer.Argument(help="facebook or twitter")],
    days: Annotated[int | None, typer.Option(min=1, max=90, help="Days of page figures")] = None,
) -> None:
    """Store the platform's reach and engagement figures as daily snapshots for reports."""
    from bot.errors import AuthError, RateLimited
    from bot.insights import collect_facebook_insights, collect_twitter_metrics

    if channel not in ("facebook", "twitter"):
        raise typer.BadParameter("facebook or twitter", param_hint="CHANNEL")
    try:
        if channel == "twitter":
            tw = collect_twitter_metrics(state_of(ctx).app)
            out.print(
                f"twitter: {tw.followers} followers; {tw.post_rows} post figures "
                f"from {tw.posts_read} posts",
                markup=False,
            )
            return
        got = collect_facebook_insights(state_of(ctx).app, days=days)
    except RateLimited as exc:  # a spent X budget is one too, until next month
        err.print(f"{channel}: {exc}; rate limited until {exc.retry_at:%Y-%m-%d %H:%M} UTC")
        raise typer.Exit(1) from None
    except AuthError as exc:
        err.print(f"{channel}: {exc}")
        raise typer.Exit(1) from None
    skipped = f"; skipped unknown metrics {', '.join(got.skipped_metrics)}"
    unreadable = f"; unreadable posts {', '.join(got.unreadable_posts)}"
    out.print(
        f"{channel}: {got.page_rows} page figures, {got.post_rows} post figures "
        f"from {got.posts_read} posts"
        + (skipped if got.skipped_metrics else "")
        + (unreadable if got.unreadable_posts else ""),
        markup=False,
    )


retention_app = typer.Typer(no_args_is_help=True, help="Deleting data when its time is up.")
app.add_typer(retention_app, name="retention")


@retention_app.command("purge")
def retention_purge(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, delete nothing")] = False,
) -> None:
    """Delete what has passed its retention period (the worker does this daily)."""
    from dataclasses import asdict

    from bot.retention import purge

    state = state_of(ctx)
    with state.app.db.session() as session:
        report = purge(
            session,
            now=state.app.clock.now(),
            retention=state.settings.retention,
            web=state.settings.web,
            dry_run=dry_run,
        )
    verb = "would remove" if dry_run else "removed"
    for kind, count in asdict(report).items():
        out.print(f"{verb} {count}\t{kind.replace('_', ' ')}")


@app.command("backup")
def backup_command(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option(help="New file to write the copy to")],
) -> None:
    """Copy the SQLite database consistently while it is in use."""
    from bot.backup import backup

    pages = backup(state_of(ctx).settings.database_url, output)
    out.print(f"backed up {pages} pages to {output}")


@app.command("restore")
def restore_command(
    ctx: typer.Context,
    input_: Annotated[Path, typer.Option("--input", help="A file written by `backup`")],
    force: Annotated[bool, typer.Option(help="Confirm: this replaces all current data")] = False,
) -> None:
    """Replace the SQLite database with a backup (stop the worker and console first)."""
    from bot.backup import restore

    if not force:
        raise typer.BadParameter(
            "restoring replaces every record; add --force to confirm", param_hint="--force"
        )
    restore(state_of(ctx).settings.database_url, input_)
    out.print(f"restored from {input_}")


# -- long-running processes ----------------------------------------------------------------
@app.command()
def worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(help="Run each job once and exit")] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus /metrics on 127.0.0.1:PORT"),
    ] = None,
) -> None:
    """Run the scheduler: process stored messages and send queued replies."""
    from schedules.worker import run_worker

    if metrics_port is not None and not once:
        from bot.observability.metrics import serve_metrics

        serve_metrics(metrics_port)
        out.print(f"worker metrics on http://127.0.0.1:{metrics_port}/metrics")
    run_worker(state_of(ctx).app, once=once)


@app.command()
def serve(ctx: typer.Context, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the console and webhooks (uvicorn)."""
    from bot.web.server import run_server

    run_server(state_of(ctx).app, host=host, port=port)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI in-process; errors the user can fix become a message and an exit code."""
    try:
        result = app(args=argv, prog_name="campusbot", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        return 130
    except ConfigError as exc:
        err.print(f"config error: {exc}", markup=False)
        return 2
    except BotError as exc:
        err.print(f"error: {exc}", markup=False)
        return 1
    except typer.TyperException as exc:  # usage errors: bad option, missing file...
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(str(exc), markup=False)
        return int(getattr(exc, "exit_code", 2))
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
