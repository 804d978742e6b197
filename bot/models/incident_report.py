"""Incident and intelligence reports: the guided conversation's state, and media to fetch.

A report belongs to the case the pipeline opened for its first message, and its reference
is that case's. What the student said is never copied here: each answer is a message, and
``ReportEntry`` says which question it answered, so retention and erasure of messages reach
every word of a report without knowing about this table.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Integer, String, Text
from sqlmodel import Field, SQLModel

from bot.models.base import json_field, optional_utc, utc_field


class ReportStatus(StrEnum):
    COLLECTING = "collecting"  # the bot is still asking its questions
    FILED = "filed"


class ReportStep(StrEnum):
    """The questions, in the order they are asked."""

    WHAT = "what"
    WHERE = "where"
    WHEN = "when"
    WHO = "who"
    MEDIA = "media"
    ANONYMOUS = "anonymous"
    DONE = "done"


class ReportKind(StrEnum):
    INCIDENT = "incident"
    INTELLIGENCE = "intelligence"


class FetchStatus(StrEnum):
    PENDING = "pending"  # to be downloaded, now or after a backoff
    DONE = "done"
    REFUSED = "refused"  # the bytes are not an accepted photo or video: kept, not retried
    FAILED = "failed"  # gave up after the configured attempts: kept for a person to see


class IncidentReport(SQLModel, table=True):
    __tablename__ = "incident_reports"

    id: int | None = Field(default=None, primary_key=True)
    # Nullable only for the moment between a web form's message and its case.
    case_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("cases.id", ondelete="CASCADE"), unique=True, nullable=True
        ),
    )
    opening_message_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("messages.id", ondelete="SET NULL"), unique=True, nullable=True
        ),
    )
    public_id: str = Field(max_length=64, unique=True)  # random; the report's code derives from it
    channel: str = Field(max_length=32)
    kind: str = Field(default=ReportKind.INCIDENT, sa_type=String(16))
    status: str = Field(default=ReportStatus.COLLECTING, sa_type=String(16), index=True)
    step: str = Field(default=ReportStep.WHAT, sa_type=String(16))
    anonymous: bool | None = None
    skipped: list[str] = json_field(list)
    reasked: bool = False  # the current question was asked again after an unclear answer
    safeguarding: bool = False  # suggests someone under 18
    safeguarding_signal: str | None = Field(default=None, max_length=32)  # which kind of phrase
    sexual_offence: bool = False
    filed_reason: str | None = Field(default=None, max_length=16)
    code_failures: int = 0
    code_failures_since: datetime | None = optional_utc()
    created_at: datetime = utc_field()
    last_activity_at: datetime = utc_field(index=True)
    filed_at: datetime | None = optional_utc()


class ReportEntry(SQLModel, table=True):
    """One message that is part of a report, and what it answered."""

    __tablename__ = "incident_report_entries"

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("incident_reports.id", ondelete="CASCADE"),
            index=True,
            nullable=False,
        )
    )
    message_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("messages.id", ondelete="CASCADE"), unique=True, nullable=False
        )
    )
    field: str = Field(max_length=16)  # a ReportStep, or opening / addition / web
    added_at: datetime = utc_field()


class AttachmentFetch(SQLModel, table=True):
    """A platform's media URL still to be downloaded into the media store (the retry list)."""

    __tablename__ = "attachment_fetches"

    id: int | None = Field(default=None, primary_key=True)
    attachment_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("message_attachments.id", ondelete="CASCADE"),
            unique=True,
            nullable=False,
        )
    )
    message_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("messages.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    channel: str = Field(max_length=32)
    status: str = Field(default=FetchStatus.PENDING, sa_type=String(16), index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = optional_utc()
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = utc_field()
    done_at: datetime | None = optional_utc()
