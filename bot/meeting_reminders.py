"""The worker's meeting-reminders job: email each student who gave an address, once, a day
before their meeting, with the invitation attached.

A reminder is marked sent (``reminded_at``) only once the mail server has taken it, so a
server that is down or answers "try again later" leaves it due for the next run; the
error is kept on the booking. An address the server refuses for good (5xx) is marked
``reminder_refused`` and audited rather than retried forever. A student who gave no
address is sent nothing: their confirmation page asked them to save the invitation.

Schedule it every few minutes on the leader only (it polls, like expiring posts). Each
reminder is also claimed with a conditional update, so two runs at once send it once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlmodel import col, select

from bot import meetings
from bot.crud import audit
from bot.errors import ConfigError, PermanentError, TransientError
from bot.incident_reports.codes import report_key
from bot.mailer import ConnectionLost, Mailer, reply_code
from bot.models import Booking, BookingStatus, MeetingSlot

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

REMINDERS_EVERY_SECONDS = 300
REMIND_BEFORE = timedelta(hours=24)


@dataclass
class ReminderReport:
    sent: int = 0
    retrying: int = 0
    refused: int = 0


def due_bookings(app: App) -> list[tuple[int, int]]:
    """(booking id, attempts so far) of live bookings with an address, not yet reminded,
    whose meeting starts within the next day."""
    now = app.clock.now()
    with app.db.session() as session:
        rows = session.exec(
            select(Booking.id, Booking.reminder_attempts)
            .join(MeetingSlot, col(MeetingSlot.id) == col(Booking.slot_id))
            .where(
                Booking.status == BookingStatus.BOOKED,
                col(Booking.email).is_not(None),
                col(Booking.reminded_at).is_(None),
                col(Booking.reminder_refused).is_(False),
                col(MeetingSlot.withdrawn).is_(False),
                col(MeetingSlot.starts_at) > now,
                col(MeetingSlot.starts_at) <= now + REMIND_BEFORE,
            )
            .order_by(col(MeetingSlot.starts_at))
        ).all()
    return [(booking_id, attempts) for booking_id, attempts in rows if booking_id is not None]


def send_reminders(app: App) -> ReminderReport:
    report = ReminderReport()
    due = due_bookings(app)
    if not due:
        return report
    try:
        mailer = Mailer(app.settings.smtp)
    except ConfigError as exc:  # nothing is lost: they stay due until email is set up
        log.error("meeting reminders cannot be sent: %s", exc)
        report.retrying = len(due)
        return report
    with mailer:
        for booking_id, attempts in due:
            message = _claim(app, booking_id, attempts)
            if message is None:
                continue
            try:
                mailer.send(message, str(message["To"]))
            except ConnectionLost as exc:
                _failed(app, booking_id, exc, refused=False)
                report.retrying += 1
                log.warning("meeting reminders paused until the next run: %s", exc)
                break
            except TransientError as exc:
                _failed(app, booking_id, exc, refused=False)
                report.retrying += 1
            except PermanentError as exc:
                _failed(app, booking_id, exc, refused=True)
                report.refused += 1
            else:
                _sent(app, booking_id)
                report.sent += 1
    return report


def _claim(app: App, booking_id: int, attempts: int) -> EmailMessage | None:
    """Count the attempt, if no other run got there first; the email to send."""
    with app.db.session() as session:
        claimed = session.execute(
            update(Booking)
            .where(
                col(Booking.id) == booking_id,
                col(Booking.reminder_attempts) == attempts,
                col(Booking.reminded_at).is_(None),
                col(Booking.status) == BookingStatus.BOOKED,
            )
            .values(reminder_attempts=attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        booking = session.get(Booking, booking_id)
        slot = session.get(MeetingSlot, booking.slot_id) if booking else None
        if booking is None or slot is None:
            return None
        return compose(app, booking, slot)


def compose(app: App, booking: Booking, slot: MeetingSlot) -> EmailMessage:
    settings = app.settings
    team = settings.account.team_name
    manage_url = None
    if booking.manage_id:
        code = meetings.manage_code(report_key(settings), booking.manage_id)
        manage_url = f"{settings.public_base_url.rstrip('/')}/meet/manage/{code}"
    local = slot.starts_at.astimezone(settings.tz)
    message = EmailMessage()
    message["From"] = settings.smtp.from_address or ""
    message["To"] = booking.email or ""
    message["Subject"] = f"Reminder: your meeting with the {team} team"
    lines = [
        f"Hello{' ' + booking.name if booking.name else ''},",
        "",
        f"This is a reminder of your meeting with {meetings.first_name(slot.officer)} "
        f"from the {team} team:",
        "",
        f"  {local.strftime('%A %d %B %Y at %H:%M')} (UK time)",
        f"  {slot.place}",
        "",
        f"To cancel or move it: {manage_url}" if manage_url else "To cancel, reply to us.",
        "The invitation is attached for your calendar.",
        "",
        "This is not for emergencies: in an emergency always call 999, otherwise 101.",
    ]
    message.set_content("\n".join(lines))
    message.add_attachment(
        meetings.invitation(slot, booking, team=team, manage_url=manage_url),
        maintype="text",
        subtype="calendar",
        filename="meeting.ics",
    )
    return message


def _sent(app: App, booking_id: int) -> None:
    now = app.clock.now()
    with app.db.session() as session:
        booking = session.get(Booking, booking_id)
        if booking is None:
            return
        booking.reminded_at = now
        booking.reminder_error = None
        session.add(booking)
        audit.record(
            session,
            at=now,
            actor="system",
            action="meeting.reminded",
            entity="booking",
            entity_id=booking_id,
            detail={"attempts": booking.reminder_attempts},
        )


def _failed(app: App, booking_id: int, error: Exception, *, refused: bool) -> None:
    now = app.clock.now()
    with app.db.session() as session:
        booking = session.get(Booking, booking_id)
        if booking is None:
            return
        booking.reminder_error = str(error)[:300]
        booking.reminder_refused = refused
        session.add(booking)
        if refused:
            audit.record(
                session,
                at=now,
                actor="system",
                action="meeting.reminder_refused",
                entity="booking",
                entity_id=booking_id,
                detail={"code": reply_code(error)},
            )
