"""Meetings with community officers: published slots and the bookings students make."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, text
from sqlmodel import Field, SQLModel

from bot.models.base import optional_utc, utc_field


class SlotKind(StrEnum):
    SURGERY = "surgery"  # a drop-in session at a place
    ONE_TO_ONE = "one_to_one"


class MeetingSlot(SQLModel, table=True):
    __tablename__ = "meeting_slots"

    id: int | None = Field(default=None, primary_key=True)
    officer: str = Field(max_length=64, index=True)
    kind: str = Field(default=SlotKind.ONE_TO_ONE, sa_type=String(16))
    place: str = Field(max_length=200)
    starts_at: datetime = utc_field(index=True)
    ends_at: datetime = utc_field()
    withdrawn: bool = False
    created_at: datetime = utc_field()


class BookingStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"


class Booking(SQLModel, table=True):
    """A slot holds at most one live booking: a partial unique index, not application logic,
    so two students confirming at the same instant cannot both get it."""

    __tablename__ = "bookings"
    __table_args__ = (
        Index(
            "uq_bookings_live_slot",
            "slot_id",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    slot_id: int = Field(foreign_key="meeting_slots.id", index=True)
    channel: str = Field(max_length=32)
    contact_id: str = Field(max_length=256)  # the student's id on that channel
    name: str | None = Field(default=None, max_length=128)
    case_reference: str | None = Field(default=None, max_length=32)
    status: str = Field(default=BookingStatus.BOOKED, sa_type=String(16), index=True)
    created_at: datetime = utc_field()
    cancelled_at: datetime | None = optional_utc()
    # A booking made on the web page: the student's private manage link is derived from
    # this random id and the key (bot.meetings.manage_code), so the database alone cannot forge it.
    manage_id: str | None = Field(default=None, max_length=32, unique=True, index=True)
    email: str | None = Field(default=None, max_length=254)  # only for the reminder
    reminded_at: datetime | None = optional_utc()
    reminder_attempts: int = 0
    reminder_error: str | None = Field(default=None, max_length=300)
    reminder_refused: bool = False  # the mail server refused the address for good
