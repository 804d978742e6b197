"""A case in the triage inbox: one per open conversation, raised by its most serious message."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from bot.models.base import json_field, optional_utc, utc_field


class CaseStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    AWAITING_REPLY = "awaiting_reply"
    CLOSED = "closed"


class Priority(StrEnum):
    P1 = "P1"  # risk to life
    P2 = "P2"  # urgent
    P3 = "P3"  # a report or intelligence
    P4 = "P4"  # everything else


class Case(SQLModel, table=True):
    __tablename__ = "cases"

    id: int | None = Field(default=None, primary_key=True)
    reference: str | None = Field(default=None, max_length=32, unique=True)
    channel: str = Field(max_length=32)
    conversation_id: str = Field(max_length=256, index=True)
    author_id: str = Field(max_length=256, index=True)
    status: str = Field(default=CaseStatus.NEW, sa_type=String(16), index=True)
    priority: str = Field(default=Priority.P4, sa_type=String(2), index=True)
    scenarios: list[str] = json_field(list)
    urgent: bool = False
    risk: bool = False
    needs_human: bool = False
    assignee: str | None = Field(default=None, max_length=128, index=True)
    opened_at: datetime = utc_field(index=True)
    updated_at: datetime = utc_field()
    sla_due_at: datetime = utc_field(index=True)
    acknowledged_at: datetime | None = optional_utc()
    first_human_reply_at: datetime | None = optional_utc()
    closed_at: datetime | None = optional_utc()
