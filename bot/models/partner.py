"""Intelligence gradings (3x5x2) and the reports sent to partner agencies.

A grading is kept for each evaluation an officer makes; the latest one counts, earlier ones
stay as the record of how the assessment changed. A sending is written before the email
goes, so a mail server that is down leaves a ``failed`` row to retry, never nothing. Its
report body is kept only until the mail server accepts it: after that only its SHA-256
remains, as proof of exactly what left, without another copy of the case on file.
Both go with their case when retention removes it.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Integer, String, Text
from sqlmodel import Field, SQLModel

from bot.models.base import json_field, optional_utc, utc_field


class SendingStatus(StrEnum):
    SENDING = "sending"  # committed before the SMTP conversation; left so only by a crash
    SENT = "sent"  # accepted by the mail server
    FAILED = "failed"  # not accepted: kept, with its report, for `campusbot partners retry`


class IntelligenceGrading(SQLModel, table=True):
    __tablename__ = "intelligence_gradings"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    source: str = Field(sa_type=String(1))  # 1 reliable, 2 untested, 3 not reliable
    intelligence: str = Field(sa_type=String(1))  # A known directly ... E suspected false
    handling: str = Field(sa_type=String(1))  # P lawful sharing permitted, C with conditions
    conditions: str | None = Field(default=None, sa_type=Text)  # required with C
    graded_by: str = Field(max_length=128)
    graded_at: datetime = utc_field()


class PartnerSending(SQLModel, table=True):
    __tablename__ = "partner_sendings"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    case_reference: str = Field(max_length=32)
    agency: str = Field(max_length=40, index=True)
    recipient: str = Field(max_length=254)
    format: str = Field(sa_type=String(8))
    fields: list[str] = json_field(list)
    grading_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("intelligence_gradings.id", ondelete="SET NULL"), nullable=True
        ),
    )
    status: str = Field(default=SendingStatus.SENDING, sa_type=String(8), index=True)
    attempts: int = 0
    sent_by: str = Field(max_length=128)
    created_at: datetime = utc_field()
    attempted_at: datetime = utc_field()
    sent_at: datetime | None = optional_utc()
    message_id: str = Field(max_length=256)
    subject: str = Field(max_length=300)
    body_sha256: str = Field(max_length=64)
    body: str | None = Field(default=None, sa_type=Text)  # the whole email; None once sent
    last_error: str | None = Field(default=None, sa_type=Text)
