"""Booking meetings with community officers: slots, bookings, cancellations, invitations.

The database decides who gets a slot: a partial unique index allows one live booking per
slot, so of two students confirming the same slot at the same moment exactly one succeeds
and the other is told it has just gone, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from icalendar import Calendar, Event, vText
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.crud import audit
from bot.errors import BotError
from bot.models import Booking, BookingStatus, MeetingSlot, SlotKind

MAX_MINUTES = 8 * 60
WEB = "web"  # the channel of bookings made on the /meet page
_MANAGE_ID = re.compile(r"[0-9a-f]{32}")
_RANKS = frozenset({"pc", "pcso", "dc", "sgt", "ds", "insp", "inspector", "officer", "sergeant"})


class SlotTaken(BotError):
    """Someone else booked this slot first."""


def add_slot(
    session: Session,
    *,
    officer: str,
    starts_at: datetime,
    minutes: int,
    place: str,
    kind: SlotKind,
    at: datetime,
) -> MeetingSlot:
    if starts_at.tzinfo is None:
        raise BotError("a slot's start needs a time zone")
    if not 5 <= minutes <= MAX_MINUTES:
        raise BotError(f"a slot lasts between 5 and {MAX_MINUTES} minutes")
    if starts_at <= at:
        raise BotError("a slot must start in the future")
    if not place.strip():
        raise BotError("say where the meeting is")
    ends_at = starts_at + timedelta(minutes=minutes)
    clash = session.exec(
        select(MeetingSlot.id).where(
            MeetingSlot.officer == officer,
            col(MeetingSlot.withdrawn).is_(False),
            col(MeetingSlot.starts_at) < ends_at,
            col(MeetingSlot.ends_at) > starts_at,
        )
    ).first()
    if clash is not None:
        raise BotError(f"{officer} already has slot {clash} at that time")
    slot = MeetingSlot(
        officer=officer,
        kind=kind,
        place=place.strip(),
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        created_at=at,
    )
    session.add(slot)
    session.flush()
    audit.record(
        session,
        at=at,
        actor=officer,
        action="meeting.slot_added",
        entity="slot",
        entity_id=slot.id or 0,
        detail={"kind": kind.value},
    )
    return slot


def open_slots(session: Session, *, at: datetime) -> Sequence[MeetingSlot]:
    """Future, not withdrawn, with no live booking."""
    booked = select(Booking.slot_id).where(Booking.status == BookingStatus.BOOKED)
    return session.exec(
        select(MeetingSlot)
        .where(
            col(MeetingSlot.starts_at) > at,
            col(MeetingSlot.withdrawn).is_(False),
            col(MeetingSlot.id).not_in(booked),
        )
        .order_by(col(MeetingSlot.starts_at))
    ).all()


def book(
    session: Session,
    *,
    slot_id: int,
    channel: str,
    contact_id: str,
    at: datetime,
    name: str | None = None,
    case_reference: str | None = None,
    email: str | None = None,
    manage_id: str | None = None,
) -> Booking:
    slot = session.get(MeetingSlot, slot_id)
    if slot is None or slot.withdrawn:
        raise BotError(f"no slot {slot_id}")
    if slot.starts_at <= at:
        raise BotError("that slot has already started")
    booking = Booking(
        slot_id=slot_id,
        channel=channel,
        contact_id=contact_id,
        name=name,
        case_reference=case_reference,
        email=email,
        manage_id=manage_id,
        created_at=at,
    )
    session.add(booking)
    try:
        session.flush()
    except IntegrityError:
        # No savepoint (pysqlite would commit it on its own): the whole unit of work rolls
        # back, so a failed rebook keeps the old booking.
        raise SlotTaken("that slot has just been taken; please choose another") from None
    audit.record(
        session,
        at=at,
        actor="student",  # the audit log outlives retention: it names no student
        action="meeting.booked",
        entity="booking",
        entity_id=booking.id or 0,
        detail={"slot_id": slot_id},
    )
    return booking


def cancel(session: Session, *, booking_id: int, by: str, at: datetime) -> Booking:
    booking = session.get(Booking, booking_id)
    if booking is None or booking.status != BookingStatus.BOOKED:
        raise BotError(f"no live booking {booking_id}")
    booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = at
    session.add(booking)
    audit.record(
        session,
        at=at,
        # the audit log outlives retention and erasure: a student cancelling is "student"
        actor="student" if by in ("student", booking.contact_id) else by,
        action="meeting.cancelled",
        entity="booking",
        entity_id=booking_id,
        detail={"slot_id": booking.slot_id},
    )
    return booking


def rebook(
    session: Session, *, booking_id: int, new_slot_id: int, by: str, at: datetime
) -> Booking:
    """Move a booking: the new slot is taken first, so a failure keeps the old one.

    The new booking inherits the manage link, so the link a student saved keeps working;
    on failure the whole unit of work rolls back and the old booking keeps it."""
    old = session.get(Booking, booking_id)
    if old is None or old.status != BookingStatus.BOOKED:
        raise BotError(f"no live booking {booking_id}")
    if new_slot_id == old.slot_id:
        raise BotError("that is the slot already booked")
    manage_id, old.manage_id = old.manage_id, None
    session.add(old)
    session.flush()
    new = book(
        session,
        slot_id=new_slot_id,
        channel=old.channel,
        contact_id=old.contact_id,
        at=at,
        name=old.name,
        case_reference=old.case_reference,
        email=old.email,
        manage_id=manage_id,
    )
    cancel(session, booking_id=booking_id, by=by, at=at)
    return new


def invitation(
    slot: MeetingSlot, booking: Booking, *, team: str, manage_url: str | None = None
) -> bytes:
    """An .ics invitation the student's calendar can import (RFC 5545)."""
    calendar = Calendar()
    calendar.add("prodid", "-//campusbot//UCLan Campus Police//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"booking-{booking.id}@campusbot")
    event.add("dtstamp", booking.created_at)
    event.add("dtstart", slot.starts_at)
    event.add("dtend", slot.ends_at)
    event.add("summary", f"Meeting with the {team} team")
    event["location"] = vText(slot.place)
    how = f"cancel or move it at {manage_url}" if manage_url else "reply to cancel or rebook"
    event.add(
        "description",
        f"If you can no longer come, {how}. In an emergency always call 999.",
    )
    event.add("status", "CONFIRMED" if booking.status == BookingStatus.BOOKED else "CANCELLED")
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def new_manage_id() -> str:
    return secrets.token_hex(16)


def manage_code(key: bytes, manage_id: str) -> str:
    """The secret in a booking's manage link: its random id and an HMAC of it under the
    key. Nothing stored reveals the HMAC, so a copy of the database cannot cancel anyone's
    meeting, yet the link can be written again (in the reminder) without being stored."""
    mac = hmac.new(key, f"meeting-manage|{manage_id}".encode(), hashlib.sha256).digest()
    return f"{manage_id}-{base64.urlsafe_b64encode(mac[:16]).decode().rstrip('=')}"


def booking_for_code(session: Session, key: bytes, code: str) -> Booking | None:
    """The booking a manage link names, or None for a wrong or unknown code."""
    manage_id, _, _mac = code[:64].partition("-")
    if not _MANAGE_ID.fullmatch(manage_id):
        return None
    if not hmac.compare_digest(manage_code(key, manage_id).encode(), code.encode()):
        return None
    return session.exec(select(Booking).where(Booking.manage_id == manage_id)).first()


def first_name(officer: str) -> str:
    """What a student is told of who they will meet: a first name only, never a surname.

    ``officer`` is free text ("PC Sarah Ashworth", "pc.ashworth"): the first word after any
    rank, if a surname follows it; otherwise no name at all."""
    words = [w for w in re.split(r"[\s._]+", officer.strip()) if w]
    names = [w for w in words if w.lower().rstrip(".") not in _RANKS and "@" not in w]
    if len(names) >= 2 and names[0].isalpha():
        return names[0].capitalize() if names[0].islower() else names[0]
    return "a campus officer"
