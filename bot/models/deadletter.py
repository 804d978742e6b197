"""Payloads the bot could not take in, kept byte for byte with the reason, for a retry."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import LargeBinary, String, Text
from sqlmodel import Field, SQLModel

from bot.models.base import optional_utc, utc_field


class DeadLetterStatus(StrEnum):
    PENDING = "pending"
    RESOLVED = "resolved"


class DeadLetter(SQLModel, table=True):
    __tablename__ = "dead_letters"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=64, index=True)  # the channel whose parser refused it
    origin: str | None = Field(default=None, max_length=1024)  # file:line, webhook path...
    reason: str = Field(sa_type=Text)
    raw: bytes = Field(sa_type=LargeBinary)
    sha256: str = Field(max_length=64, index=True)  # the same bytes again add to times_seen
    times_seen: int = 1
    received_at: datetime = utc_field(index=True)
    attempts: int = 0
    status: str = Field(default=DeadLetterStatus.PENDING, sa_type=String(16), index=True)
    resolved_at: datetime | None = optional_utc()
