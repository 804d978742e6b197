"""`campusbot surveys`: check survey files, store them, take in email replies, see results."""

from __future__ import annotations

import json
from datetime import date, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table as RichTable
from rich.text import Text

from bot.cli_common import err, out, state_of
from bot.errors import BotError

if TYPE_CHECKING:
    from bot.cli_common import State
    from bot.surveys import Survey

surveys_app = typer.Typer(no_args_is_help=True, help="Surveys (YAML) and their answers.")


class Output(StrEnum):
    TEXT = "text"
    JSON = "json"


def _checked(state: State) -> tuple[list[Survey], dict[str, str]]:
    """Every survey file, and campaign -> survey id, once both folders agree."""
    from bot.errors import ConfigError
    from bot.surveys import campaign_surveys, load_surveys, unknown_references
    from schedules.campaigns import load_campaigns

    surveys = load_surveys(state.settings.surveys_dir)
    links = campaign_surveys(load_campaigns(state.settings.campaigns_dir))
    problems = unknown_references(surveys, links)
    if problems:
        raise ConfigError("\n".join(problems))
    return surveys, links


@surveys_app.command("validate")
def surveys_validate(ctx: typer.Context) -> None:
    """Check every survey file and that each campaign's survey id names one."""
    surveys, links = _checked(state_of(ctx))
    out.print(
        f"{len(surveys)} survey(s) valid; {len(links)} campaign(s) link to one of them",
        markup=False,
    )


@surveys_app.command("list")
def surveys_list(ctx: typer.Context) -> None:
    """Surveys with their days, number of questions, campaigns and responses so far."""
    from sqlalchemy import func, select

    from bot.models.survey import SurveyResponse

    state = state_of(ctx)
    surveys, links = _checked(state)
    r = SurveyResponse.__table__.c  # type: ignore[attr-defined]
    with state.app.db.session() as session:
        counts = dict(
            session.execute(select(r.survey_id, func.count()).group_by(r.survey_id)).all()
        )
    table = RichTable()
    for column in ("id", "questions", "opens", "closes", "campaigns", "responses"):
        table.add_column(column, overflow="fold")
    for s in surveys:
        table.add_row(
            s.id,
            "external" if s.is_external else str(len(s.questions)),
            s.opens.isoformat() if s.opens else "",
            s.closes.isoformat() if s.closes else "",
            ",".join(sorted(name for name, sid in links.items() if sid == s.id)),
            str(counts.get(s.id, 0)),
        )
    out.print(table)


@surveys_app.command("load")
def surveys_load(ctx: typer.Context) -> None:
    """Copy the survey files into the database now (the first answer also does it); refuses
    a change that would alter what stored answers mean."""
    from bot.survey_store import store_definition

    state = state_of(ctx)
    surveys, _ = _checked(state)
    with state.app.db.session() as session:
        for survey in surveys:
            store_definition(session, survey, tz=state.settings.tz, at=state.app.clock.now())
    out.print(f"{len(surveys)} survey(s) stored", markup=False)


@surveys_app.command("collect")
def surveys_collect(ctx: typer.Context) -> None:
    """Take in In The Know replies to open surveys and tag free text with scenarios.

    Safe to run at any time and as often as wanted (the worker can run it every few minutes).
    """
    from bot.survey_store import run_collection

    report, tagged = run_collection(state_of(ctx).app)
    out.print(
        f"{report.examined} In The Know message(s) examined, {report.recorded} recorded as "
        f"responses ({report.with_answers} with answers, {report.free_text_only} free text "
        f"only); {tagged} free-text answer(s) tagged",
        markup=False,
    )
    for problem in report.problems:
        err.print(f"kept as free text: {problem}", markup=False)


def _day(value: str | None, option: str, default: date) -> date:
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date (YYYY-MM-DD)", param_hint=option
        ) from None


@surveys_app.command("results")
def surveys_results(
    ctx: typer.Context,
    survey_id: Annotated[str, typer.Argument(metavar="SURVEY", help="The survey's id")],
    from_: Annotated[
        str | None, typer.Option("--from", help="First day (default: the day it opened)")
    ] = None,
    to: Annotated[str | None, typer.Option(help="Last day (default: today)")] = None,
    channel: Annotated[str | None, typer.Option(help="Only answers through this channel")] = None,
    fmt: Annotated[Output, typer.Option("--format", help="text or json")] = Output.TEXT,
) -> None:
    """Responses, answers per choice, ratings and free-text themes (text redacted)."""
    from bot.reports import ReportQuery, survey_tables

    state = state_of(ctx)
    surveys = {s.id: s for s in _checked(state)[0]}
    survey = surveys.get(survey_id)
    if survey is None:
        raise BotError(f"no survey {survey_id!r}; `campusbot surveys list` shows them")
    today = state.app.clock.now().astimezone(state.settings.tz).date()
    start = _day(from_, "--from", survey.opens or today - timedelta(days=365))
    end = _day(to, "--to", min(today, survey.closes) if survey.closes else today)
    if end < start:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    query = ReportQuery(
        start=start, end=end, tz=state.settings.tz, channel=channel, survey=survey_id
    )
    with state.app.db.session() as session:
        tables = survey_tables(session, query)
    if fmt is Output.JSON:
        payload = {
            "survey": survey_id,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "tables": {t.name: t.as_dicts() for t in tables},
        }
        out.print_json(json.dumps(payload, ensure_ascii=False))
        return
    out.print(f"{survey.title} ({survey_id}), {start} to {end}", markup=False)
    for table in tables:
        if "text" in table.columns and table.rows:  # long words read better as lines
            out.print(Text(table.title, style="italic"))
            for fields in table.as_dicts():
                said = fields.pop("text")
                # Text(): a student's words are shown as written, never as console markup.
                out.print(Text(f"- {' · '.join(str(v) for v in fields.values())}: {said}"))
            continue
        shown = RichTable(title=table.title)
        for column in table.columns:
            shown.add_column(column.replace("_", " "))
        for row in table.rows:
            shown.add_row(*(Text("" if v is None else str(v)) for v in row))
        out.print(shown if table.rows else Text(f"{table.title}: none"))
