"""`campusbot meetings`: officers publish slots; bookings, cancellations and invitations."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.cli_common import out, state_of

meetings_app = typer.Typer(no_args_is_help=True, help="Meetings with community officers.")


@meetings_app.command("add-slot")
def add_slot(
    ctx: typer.Context,
    officer: Annotated[str, typer.Option(help="Who holds the meeting")],
    start: Annotated[str, typer.Option(help="Local start, e.g. 2026-12-01T14:00 (London)")],
    place: Annotated[str, typer.Option(help="Where, e.g. 'Foster Building, room 2'")],
    minutes: Annotated[int, typer.Option(help="How long")] = 20,
    kind: Annotated[str, typer.Option(help="one_to_one or surgery")] = "one_to_one",
) -> None:
    """Publish a slot students can book."""
    from bot import meetings
    from bot.models import SlotKind

    state = state_of(ctx)
    try:
        local = datetime.fromisoformat(start)
        slot_kind = SlotKind(kind)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    starts_at = local if local.tzinfo else local.replace(tzinfo=state.settings.tz)
    with state.app.db.session() as session:
        slot = meetings.add_slot(
            session,
            officer=officer,
            starts_at=starts_at,
            minutes=minutes,
            place=place,
            kind=slot_kind,
            at=state.app.clock.now(),
        )
    out.print(f"slot {slot.id} added")


@meetings_app.command("slots")
def slots(ctx: typer.Context) -> None:
    """Open slots, soonest first (London time)."""
    from bot import meetings

    state = state_of(ctx)
    table = Table()
    for column in ("id", "when", "minutes", "officer", "kind", "place"):
        table.add_column(column)
    with state.app.db.session() as session:
        for slot in meetings.open_slots(session, at=state.app.clock.now()):
            minutes = int((slot.ends_at - slot.starts_at).total_seconds() // 60)
            table.add_row(
                str(slot.id),
                f"{slot.starts_at.astimezone(state.settings.tz):%a %d %b %H:%M}",
                str(minutes),
                slot.officer,
                slot.kind,
                slot.place,
            )
    out.print(table)


@meetings_app.command("book")
def book(
    ctx: typer.Context,
    slot_id: int,
    channel: Annotated[str, typer.Option(help="Where the student talks to us")],
    contact: Annotated[str, typer.Option(help="Their id on that channel")],
    name: Annotated[str | None, typer.Option()] = None,
    ics: Annotated[Path | None, typer.Option(help="Write the .ics invitation here")] = None,
) -> None:
    """Book a slot for a student (a taken slot is refused: choose another)."""
    from bot import meetings
    from bot.models import MeetingSlot

    state = state_of(ctx)
    with state.app.db.session() as session:
        booking = meetings.book(
            session,
            slot_id=slot_id,
            channel=channel,
            contact_id=contact,
            name=name,
            at=state.app.clock.now(),
        )
        slot = session.get(MeetingSlot, slot_id)
        assert slot is not None
        invitation = meetings.invitation(slot, booking, team=state.settings.account.team_name)
    if ics is not None:
        ics.write_bytes(invitation)
    out.print(f"booking {booking.id} confirmed")


@meetings_app.command("cancel")
def cancel(
    ctx: typer.Context, booking_id: int, by: Annotated[str, typer.Option("--by")] = "officer"
) -> None:
    """Cancel a booking; its slot opens again."""
    from bot import meetings

    state = state_of(ctx)
    with state.app.db.session() as session:
        meetings.cancel(session, booking_id=booking_id, by=by, at=state.app.clock.now())
    out.print(f"booking {booking_id} cancelled")
