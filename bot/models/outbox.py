"""Replies waiting to go out, and what happened to each."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

from bot.models.base import optional_utc, utc_field


class OutboxStatus(StrEnum):
    NEEDS_APPROVAL = "needs_approval"  # held until an officer approves the wording
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class ReplyKind(StrEnum):
    AUTO_ACK = "auto_ack"  # automatic acknowledgement from an approved template
    HUMAN = "human"


class OutboundMessage(SQLModel, table=True):
    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)
    in_reply_to_message_id: int | None = Field(default=None, foreign_key="messages.id")
    channel: str = Field(max_length=32, index=True)
    conversation_id: str = Field(max_length=256)
    recipient_id: str = Field(max_length=256)
    in_reply_to_external_id: str = Field(max_length=256)
    private: bool
    kind: str = Field(sa_type=String(16))
    template: str | None = Field(default=None, max_length=128)
    text: str = Field(sa_type=Text)
    status: str = Field(default=OutboxStatus.QUEUED, sa_type=String(16), index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)
    next_attempt_at: datetime | None = optional_utc()
    external_id: str | None = Field(default=None, max_length=256)
    created_by: str = Field(default="bot", max_length=128)
    created_at: datetime = utc_field()
    sent_at: datetime | None = optional_utc()
