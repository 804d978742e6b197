"""`campusbot report` and `campusbot metrics import`: figures for analysts."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bot.cli_common import out, state_of

metrics_app = typer.Typer(no_args_is_help=True, help="Engagement and reach figures.")


class Format(StrEnum):
    HTML = "html"
    CSV = "csv"
    JSON = "json"


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date (YYYY-MM-DD)", param_hint=option
        ) from None


def report(
    ctx: typer.Context,
    from_: Annotated[str, typer.Option("--from", help="First day (ISO), included")],
    to: Annotated[str, typer.Option("--to", help="Last day (ISO), included")],
    output: Annotated[Path, typer.Option(help="File (html, json) or folder (csv)")],
    fmt: Annotated[Format, typer.Option("--format", help="html, csv or json")] = Format.HTML,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign")] = None,
    channel: Annotated[str | None, typer.Option(help="twitter, facebook or in_the_know")] = None,
) -> None:
    """Reach, engagement, inbound messages and response times for a period."""
    from bot.report_render import render_html, write_csv, write_json
    from bot.reports import ReportQuery, build_report
    from schedules.campaigns import load_campaigns

    start, end = _day(from_, "--from"), _day(to, "--to")
    if end < start:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    if (end - start).days > 3 * 366:
        raise typer.BadParameter("at most three years per report", param_hint="--to")
    if channel is not None and channel not in ("twitter", "facebook", "in_the_know"):
        raise typer.BadParameter("choose twitter, facebook or in_the_know", param_hint="--channel")
    state = state_of(ctx)
    query = ReportQuery(
        start=start, end=end, tz=state.settings.tz, campaign=campaign, channel=channel
    )
    with state.app.db.session() as session:
        built = build_report(session, query, load_campaigns(state.settings.campaigns_dir))
    if fmt is Format.CSV:
        files = write_csv(built, output)
        out.print(f"wrote {len(files)} CSV tables to {output}/")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt is Format.JSON:
        write_json(built, output)
    else:
        output.write_text(render_html(built), encoding="utf-8")
    out.print(f"wrote {output}")


@metrics_app.command("import")
def metrics_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", exists=True, dir_okay=False)],
) -> None:
    """Load daily and period figures from a JSON file (all or nothing)."""
    from bot.metrics_import import import_metrics, read_metrics_file

    figures = read_metrics_file(file)
    state = state_of(ctx)
    with state.app.db.session() as session:
        daily, periods = import_metrics(session, figures, at=state.app.clock.now())
    out.print(f"imported {daily} daily and {periods} period figure(s)")
