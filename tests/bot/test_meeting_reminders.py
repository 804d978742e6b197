"""Meeting reminders: a day before, once, with the invitation attached, to students who gave
an email (a real local SMTP server); a failing server delays a reminder, never loses it."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from icalendar import Calendar
from sqlmodel import col, select

from bot import meetings
from bot.app import App, build
from bot.clock import FixedClock
from bot.config import load_settings
from bot.db import Database
from bot.incident_reports.codes import report_key
from bot.meeting_reminders import send_reminders
from bot.models import AuditEntry, Booking, SlotKind
from tests.bot.test_alerts import Inbox, smtp_server

SENDER = "campusbot@lancashire.police.uk"
BOOKED_AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
MEETING = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 14:00 in London (GMT)
STUDENT = "priya@example.ac.uk"


@pytest.fixture
def port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free: int = probe.getsockname()[1]
        return free


@pytest.fixture
def app(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, port: int) -> App:
    for name in list(os.environ):
        if name.startswith("CAMPUSBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    config = {
        "timezone": "Europe/London",
        "public_base_url": "https://campusbot.lancashire.police.uk",
        "classifier": {"kind": "keywords"},
        "smtp": {
            "host": "127.0.0.1",
            "port": port,
            "security": "plain",
            "timeout_seconds": 5,
            "from_address": SENDER,
        },
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return build(load_settings(tmp_path / "config.yaml"), clock=FixedClock(BOOKED_AT), db=db)


def set_time(app: App, at: datetime) -> None:
    assert isinstance(app.clock, FixedClock)
    app.clock.advance(at - app.clock.now())


def add_booking(app: App, email: str | None, *, minutes_later: int = 0) -> int:
    with app.db.session() as session:
        slot = meetings.add_slot(
            session,
            officer="PC Sarah Ashworth",
            starts_at=MEETING + timedelta(minutes=minutes_later),
            minutes=30,
            place="Foster Building, room 12",
            kind=SlotKind.ONE_TO_ONE,
            at=BOOKED_AT,
        )
        manage_id = meetings.new_manage_id()
        booking = meetings.book(
            session,
            slot_id=slot.id or 0,
            channel=meetings.WEB,
            contact_id=manage_id,
            at=BOOKED_AT,
            name="Priya",
            email=email,
            manage_id=manage_id,
        )
        return booking.id or 0


def booking(app: App, booking_id: int) -> Booking:
    with app.db.session() as session:
        found = session.get(Booking, booking_id)
        assert found is not None
        return found


def test_a_reminder_goes_once_a_day_before_with_the_invitation(app: App, port: int) -> None:
    booking_id = add_booking(app, STUDENT)
    add_booking(app, None, minutes_later=60)  # no email: nothing is sent
    inbox = Inbox()
    with smtp_server(inbox, port):
        assert send_reminders(app).sent == 0  # two days ahead: not yet
        set_time(app, MEETING - timedelta(hours=23))
        assert send_reminders(app).sent == 1
        assert send_reminders(app).sent == 0  # once only
    [received] = inbox.received
    assert received.recipients == [STUDENT]
    email = received.message
    assert email["From"] == SENDER and "Reminder" in str(email["Subject"])
    body = email.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Monday 23 November 2026 at 14:00" in text and "Foster Building, room 12" in text
    assert "Sarah" in text and "Ashworth" not in text
    code = meetings.manage_code(report_key(app.settings), booking(app, booking_id).manage_id or "")
    assert f"https://campusbot.lancashire.police.uk/meet/manage/{code}" in text
    [attachment] = list(email.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    invitation = attachment.get_payload(decode=True)
    assert isinstance(invitation, bytes)
    [event] = Calendar.from_ical(invitation).walk("VEVENT")
    assert event.decoded("dtstart") == MEETING
    assert booking(app, booking_id).reminded_at == MEETING - timedelta(hours=23)


def test_a_cancelled_meeting_gets_no_reminder(app: App, port: int) -> None:
    booking_id = add_booking(app, STUDENT)
    with app.db.session() as session:
        meetings.cancel(session, booking_id=booking_id, by="student", at=BOOKED_AT)
    set_time(app, MEETING - timedelta(hours=2))
    inbox = Inbox()
    with smtp_server(inbox, port):
        assert send_reminders(app).sent == 0
    assert inbox.received == []


def test_mail_server_down_then_busy_the_reminder_is_sent_on_a_later_run(
    app: App, port: int
) -> None:
    booking_id = add_booking(app, STUDENT)
    set_time(app, MEETING - timedelta(hours=20))
    down = send_reminders(app)  # nothing listening on the port
    assert (down.sent, down.retrying) == (0, 1)
    after_down = booking(app, booking_id)
    assert after_down.reminded_at is None and after_down.reminder_error
    inbox = Inbox(temporary_refusals=1)
    with smtp_server(inbox, port):
        busy = send_reminders(app)
        assert (busy.sent, busy.retrying) == (0, 1)
        assert "451" in (booking(app, booking_id).reminder_error or "")
        assert send_reminders(app).sent == 1
    assert [r.recipients for r in inbox.received] == [[STUDENT]]
    done = booking(app, booking_id)
    assert done.reminder_attempts == 3 and done.reminder_error is None


def test_a_refused_address_is_kept_and_audited_not_retried_forever(app: App, port: int) -> None:
    booking_id = add_booking(app, "nobody@example.ac.uk")
    set_time(app, MEETING - timedelta(hours=20))
    inbox = Inbox(unknown=frozenset({"nobody@example.ac.uk"}))
    with smtp_server(inbox, port):
        assert send_reminders(app).refused == 1
        assert send_reminders(app).refused == 0
    refused = booking(app, booking_id)
    assert refused.reminder_refused and "550" in (refused.reminder_error or "")
    with app.db.session() as session:
        actions = session.exec(select(AuditEntry.action).order_by(col(AuditEntry.id))).all()
    assert "meeting.reminder_refused" in actions
