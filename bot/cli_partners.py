"""`campusbot partners`: agencies, 3x5x2 grading and sending redacted reports by email."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bot.cli_common import err, out, state_of

partners_app = typer.Typer(
    no_args_is_help=True, help="Partner agencies: grade intelligence, send redacted reports."
)

Officer = Annotated[
    str, typer.Option("--by", help="The officer acting (a user name); recorded in the audit log")
]
CaseRef = Annotated[str, typer.Argument(help="The case's reference, e.g. UCC-2026-000123")]


@partners_app.command("list")
def partners_list(ctx: typer.Context) -> None:
    """The agencies, and what each sharing agreement allows."""
    agencies = state_of(ctx).settings.partners.agencies
    if not agencies:
        out.print("no partner agencies configured (partners.agencies in config.yaml)")
        return
    for key, agency in agencies.items():
        handling = ", ".join(agency.handling) or "none (facts only, never intelligence)"
        out.print(
            f"{key}: {agency.name} <{agency.email or 'address NOT SET'}>\n"
            f"  agreement: {agency.agreement}\n"
            f"  scenarios: {', '.join(agency.scenarios)}\n"
            f"  fields: {', '.join(agency.fields)}\n"
            f"  handling codes: {handling}",
            markup=False,
        )


@partners_app.command("grade")
def partners_grade(
    ctx: typer.Context,
    reference: CaseRef,
    by: Officer,
    source: Annotated[
        str, typer.Option(help="Source evaluation: 1 reliable, 2 untested, 3 not reliable")
    ],
    intelligence: Annotated[
        str,
        typer.Option(
            help="Intelligence assessment: A known directly to the source, B known indirectly "
            "but corroborated, C known indirectly, D not known, E suspected to be false"
        ),
    ],
    handling: Annotated[
        str,
        typer.Option(help="Handling code: P lawful sharing permitted, C permitted with conditions"),
    ],
    conditions: Annotated[
        str | None, typer.Option(help="The conditions, required with handling code C")
    ] = None,
) -> None:
    """Grade a case's intelligence (3x5x2); it cannot be shared until it is graded."""
    from bot.partners.access import find_case, reference_of
    from bot.partners.grading import grade_case, parse_grade

    state = state_of(ctx)
    grade = parse_grade(source, intelligence, handling, conditions)
    with state.app.db.session() as session:
        case = find_case(session, reference)
        grade_case(session, case, grade, by=by, at=state.app.clock.now())
        shown = reference_of(case)
    out.print(
        f"{shown} graded {grade.code}: source {grade.source_meaning.lower()}, intelligence "
        f"{grade.intelligence_meaning.lower()}, {grade.handling_meaning.lower()}",
        markup=False,
    )
    if grade.conditions:
        out.print(f"conditions: {grade.conditions}", markup=False)


@partners_app.command("send")
def partners_send(
    ctx: typer.Context,
    reference: CaseRef,
    by: Officer,
    agency: Annotated[str, typer.Option(help="The agency's short name (`partners list`)")],
    format_: Annotated[
        str, typer.Option("--format", help="html (pdf needs a renderer not installed)")
    ] = "html",
    note: Annotated[
        str | None, typer.Option(help="A note for the agency (redacted like the rest)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show exactly what would leave; send nothing")
    ] = False,
) -> None:
    """Email a redacted report of a case to a partner agency, as its agreement allows."""
    from bot.models import SendingStatus
    from bot.partners.sending import compose, send_report

    state = state_of(ctx)
    if dry_run:
        with state.app.db.session() as session:
            outgoing = compose(
                session,
                state.settings,
                reference=reference,
                agency=agency,
                by=by,
                at=state.app.clock.now(),
                format_=format_,
                note=note,
            )
        out.print(
            "DRY RUN: nothing sent, nothing recorded. This is what would leave (the Date and "
            "Message-ID are set when it is sent):\n",
            markup=False,
        )
        out.print(outgoing.preview(), markup=False)
        if outgoing.recipient is None:
            err.print(f"partners.agencies.{agency}.email is not set: it cannot be sent yet")
        return
    sent = send_report(
        state.app.db,
        state.settings,
        state.app.clock,
        reference=reference,
        agency=agency,
        by=by,
        format_=format_,
        note=note,
    )
    if sent.status == SendingStatus.SENT:
        out.print(
            f"sent {sent.case_reference} to {sent.agency} ({sent.recipient}) as sending "
            f"{sent.id}; fields: {', '.join(sent.fields)}",
            markup=False,
        )
        return
    err.print(
        f"NOT SENT: {sent.last_error}\nThe report is kept as sending {sent.id} (failed); send "
        f"it again with `campusbot partners retry {sent.id} --by {by}`",
        markup=False,
    )
    raise typer.Exit(1)


@partners_app.command("retry")
def partners_retry(
    ctx: typer.Context,
    sending_id: Annotated[int, typer.Argument(help="The sending's number (`partners sendings`)")],
    by: Officer,
) -> None:
    """Send a failed report again, exactly as first composed."""
    from bot.models import SendingStatus
    from bot.partners.sending import retry

    state = state_of(ctx)
    sent = retry(state.app.db, state.settings, state.app.clock, sending_id=sending_id, by=by)
    if sent.status == SendingStatus.SENT:
        out.print(f"sent {sent.case_reference} to {sent.agency} ({sent.recipient})", markup=False)
        return
    err.print(f"NOT SENT again: {sent.last_error}; it stays failed for a later retry", markup=False)
    raise typer.Exit(1)


@partners_app.command("sendings")
def partners_sendings(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Reports sent or tried, newest first, with their errors."""
    from bot.partners.sending import sendings

    state = state_of(ctx)
    table = Table()
    for column in ("id", "status", "case", "agency", "tries", "by", "when (London)", "error"):
        table.add_column(column)
    with state.app.db.session() as session:
        for row in sendings(session, limit=limit):
            when = row.sent_at or row.attempted_at
            table.add_row(
                str(row.id),
                row.status,
                row.case_reference,
                row.agency,
                str(row.attempts),
                row.sent_by,
                when.astimezone(state.settings.tz).strftime("%d %b %Y %H:%M"),
                (row.last_error or "")[:80],
            )
    out.print(table)
