"""Inbound messages, their attachments and their classification."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from bot.models.base import json_field, optional_utc, utc_field


class MessageState(StrEnum):
    RECEIVED = "received"  # stored, not yet classified and triaged
    PROCESSING = "processing"  # claimed inside an open transaction; never committed as such
    PROCESSED = "processed"


class Message(SQLModel, table=True):
    """One message as received. Unique per (channel, external_id): a redelivery is a no-op."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_messages_channel_external_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32, index=True)
    external_id: str = Field(max_length=256)
    conversation_id: str = Field(max_length=256, index=True)
    author_id: str = Field(max_length=256, index=True)
    author_handle: str | None = Field(default=None, max_length=256)
    author_name: str | None = Field(default=None, max_length=256)
    text: str = Field(sa_type=Text)
    private: bool
    addressed_to_account: bool = True
    in_reply_to: str | None = Field(default=None, max_length=256)
    received_at: datetime = utc_field(index=True)
    ingested_at: datetime = utc_field()
    raw: dict[str, Any] | None = json_field(dict, nullable=True)
    state: str = Field(default=MessageState.RECEIVED, sa_type=String(16), index=True)
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)
    # Classification: tags only. Set once processed; a correction is stored apart.
    scenarios: list[str] = json_field(list)
    urgent: bool | None = None
    risk: bool | None = None
    intent: str | None = Field(default=None, max_length=32)
    scores: dict[str, float] = json_field(dict)
    language: str | None = Field(default=None, max_length=8)
    classifier: str | None = Field(default=None, max_length=64)
    processed_at: datetime | None = optional_utc()


class MessageAttachment(SQLModel, table=True):
    __tablename__ = "message_attachments"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(
        sa_column=Column(Integer, ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    )
    kind: str = Field(max_length=16)
    url: str | None = Field(default=None, max_length=2048)
    media_type: str | None = Field(default=None, max_length=128)
    size: int | None = None
    sha256: str | None = Field(default=None, max_length=64)
