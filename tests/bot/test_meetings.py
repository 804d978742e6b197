"""Meetings: slots, bookings, cancel and rebook, invitations, and no double booking."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from icalendar import Calendar
from sqlmodel import select

from bot import meetings
from bot.app import App
from bot.cli import main
from bot.errors import BotError
from bot.models import AuditEntry, Booking, BookingStatus, MeetingSlot, SlotKind
from tests.conftest import NOW

START = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


def _slot(app: App, offset_hours: int = 0) -> int:
    with app.db.session() as session:
        slot = meetings.add_slot(
            session,
            officer="pc.jones",
            place="Foster Building, room 2",
            starts_at=START + timedelta(hours=offset_hours),
            minutes=20,
            kind=SlotKind.ONE_TO_ONE,
            at=NOW,
        )
        assert slot.id is not None
        return slot.id


def test_book_cancel_and_rebook(bot_app: App) -> None:
    first, second = _slot(bot_app), _slot(bot_app, 1)
    with bot_app.db.session() as session:
        booking = meetings.book(
            session, slot_id=first, channel="facebook", contact_id="psid1", at=NOW, name="Amira"
        )
        assert [s.id for s in meetings.open_slots(session, at=NOW)] == [second]
        moved = meetings.rebook(
            session, booking_id=booking.id or 0, new_slot_id=second, by="psid1", at=NOW
        )
        assert [s.id for s in meetings.open_slots(session, at=NOW)] == [first]
        meetings.cancel(session, booking_id=moved.id or 0, by="psid1", at=NOW)
        assert len(meetings.open_slots(session, at=NOW)) == 2
        statuses = [b.status for b in session.exec(select(Booking))]
        actors = {e.actor for e in session.exec(select(AuditEntry))}
    assert statuses == [BookingStatus.CANCELLED, BookingStatus.CANCELLED]
    assert "psid1" not in actors  # the student's id never enters the unerasable audit log
    assert "student" in actors


def test_a_taken_slot_is_refused_and_a_cancelled_one_reopens(bot_app: App) -> None:
    slot = _slot(bot_app)
    with bot_app.db.session() as session:
        first = meetings.book(session, slot_id=slot, channel="twitter", contact_id="a", at=NOW)
    with pytest.raises(meetings.SlotTaken), bot_app.db.session() as session:
        meetings.book(session, slot_id=slot, channel="twitter", contact_id="b", at=NOW)
    with bot_app.db.session() as session:
        meetings.cancel(session, booking_id=first.id or 0, by="a", at=NOW)
        again = meetings.book(session, slot_id=slot, channel="twitter", contact_id="b", at=NOW)
    assert again.status == BookingStatus.BOOKED


def test_concurrent_bookings_of_one_slot_give_exactly_one(bot_app: App) -> None:
    slot = _slot(bot_app)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def attempt(who: int) -> None:
        barrier.wait()
        try:
            with bot_app.db.session() as session:
                meetings.book(session, slot_id=slot, channel="twitter", contact_id=str(who), at=NOW)
            results.append("booked")
        except meetings.SlotTaken:
            results.append("taken")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["booked"] + ["taken"] * 7
    with bot_app.db.session() as session:
        live = session.exec(select(Booking).where(Booking.status == BookingStatus.BOOKED)).all()
    assert len(live) == 1


def test_invitation_is_a_valid_calendar_event(bot_app: App) -> None:
    slot_id = _slot(bot_app)
    with bot_app.db.session() as session:
        booking = meetings.book(
            session, slot_id=slot_id, channel="facebook", contact_id="p", at=NOW
        )
        slot = session.get(MeetingSlot, slot_id)
        assert slot is not None
        ics = meetings.invitation(slot, booking, team="UCLan Campus Police")
    [event] = Calendar.from_ical(ics).walk("VEVENT")
    assert event.decoded("dtstart") == START
    assert event.decoded("dtend") == START + timedelta(minutes=20)
    assert str(event["location"]) == "Foster Building, room 2"


@pytest.mark.parametrize(
    ("minutes", "offset", "place", "message"),
    [
        (2, 1, "SU", "between 5 and"),
        (20, -100, "SU", "in the future"),
        (20, 1, "  ", "say where"),
    ],
)
def test_bad_slots_are_refused(
    bot_app: App, minutes: int, offset: int, place: str, message: str
) -> None:
    with pytest.raises(BotError, match=message), bot_app.db.session() as session:
        meetings.add_slot(
            session,
            officer="pc.jones",
            place=place,
            starts_at=START + timedelta(hours=offset),
            minutes=minutes,
            kind=SlotKind.SURGERY,
            at=NOW,
        )


def test_meetings_from_the_command_line(
    settings: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    c = ["--config", str(config)]
    assert main([*c, "db", "upgrade"]) == 0
    assert (
        main(
            [
                *c,
                "meetings",
                "add-slot",
                "--officer",
                "pc.jones",
                "--start",
                "2030-04-02T12:30",
                "--place",
                "Student Centre",
            ]
        )
        == 0
    )
    assert main([*c, "meetings", "slots"]) == 0
    assert "Tue 02 Apr 12:30" in capsys.readouterr().out  # London time, BST that day
    ics = tmp_path / "invite.ics"
    assert (
        main(
            [
                *c,
                "meetings",
                "book",
                "1",
                "--channel",
                "facebook",
                "--contact",
                "psid",
                "--ics",
                str(ics),
            ]
        )
        == 0
    )
    assert main([*c, "meetings", "book", "1", "--channel", "twitter", "--contact", "x"]) == 1
    assert "just been taken" in capsys.readouterr().err
    [event] = Calendar.from_ical(ics.read_bytes()).walk("VEVENT")
    assert event.decoded("dtstart") == datetime(2030, 4, 2, 11, 30, tzinfo=UTC)
    assert (
        main([*c, "meetings", "add-slot", "--officer", "x", "--start", "soon", "--place", "SU"])
        == 2
    )


def test_an_officer_cannot_hold_two_overlapping_slots(bot_app: App) -> None:
    _slot(bot_app)
    with pytest.raises(BotError, match="already has slot"), bot_app.db.session() as session:
        meetings.add_slot(
            session,
            officer="pc.jones",
            place="Library",
            minutes=30,
            starts_at=START + timedelta(minutes=10),
            kind=SlotKind.SURGERY,
            at=NOW,
        )


def test_bookings_long_past_are_purged_with_the_students_details(bot_app: App) -> None:
    from bot.retention import purge

    slot = _slot(bot_app)
    with bot_app.db.session() as session:
        meetings.book(
            session,
            slot_id=slot,
            channel="in_the_know",
            contact_id="jane@uni.ac.uk",
            name="Jane",
            at=NOW,
        )
    later = START + timedelta(days=400)
    with bot_app.db.session() as session:
        report = purge(
            session, now=later, retention=bot_app.settings.retention, web=bot_app.settings.web
        )
        assert session.exec(select(Booking)).all() == []
        trail = " ".join(f"{e.actor} {e.detail}" for e in session.exec(select(AuditEntry)))
    assert report.bookings_deleted == 1
    assert "jane" not in trail.lower()
