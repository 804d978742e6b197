"""The values that cross the boundary between channels and the bot.

Channels turn whatever their platform sends into ``InboundMessage`` and take
``OutboundReply`` / ``OutboundPost`` back; nothing else about a platform leaks inward.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_ID_CHARS = 256


class AttachmentKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """What processing needs of a stored message: read as a plain row, not an ORM object."""

    id: int
    channel: str
    external_id: str
    conversation_id: str
    author_id: str
    text: str
    private: bool
    addressed_to_account: bool
    received_at: datetime


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Attachment(Frozen):
    kind: AttachmentKind
    url: str | None = Field(default=None, max_length=2048)
    media_type: str | None = Field(default=None, max_length=128)
    size: int | None = Field(default=None, ge=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class Author(Frozen):
    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    handle: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    name: str | None = Field(default=None, max_length=MAX_ID_CHARS)


class InboundMessage(Frozen):
    """One message from a student, normalised; ``raw`` is the platform payload, kept as sent."""

    channel: str = Field(min_length=1, max_length=32)
    external_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    conversation_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    author: Author
    text: str = Field(max_length=100_000)
    private: bool
    addressed_to_account: bool = True
    received_at: datetime
    attachments: tuple[Attachment, ...] = ()
    in_reply_to: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    raw: dict[str, Any] = Field(default_factory=dict)

    @field_validator("received_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("received_at needs a timezone offset")
        return value.astimezone(UTC)

    @field_validator("text")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        # PostgreSQL text cannot hold NUL; everything else (emoji, RTL marks) is kept as sent.
        return value.replace("\x00", "")


class OutboundReply(Frozen):
    """A reply to one stored message, public in its thread or private to its author."""

    channel: str
    text: str
    private: bool
    in_reply_to_external_id: str
    conversation_id: str
    recipient_id: str
    user_last_message_at: datetime | None = None  # platforms with reply windows need it
    by_human: bool = False  # an officer's own words, not an automatic reply


class OutboundPost(Frozen):
    """A post to the account's own timeline or page."""

    channel: str
    text: str
    link: str | None = None
    media_paths: tuple[str, ...] = ()


class DeliveryResult(Frozen):
    external_id: str
    delivered_at: datetime


class PublishedPost(Frozen):
    """One of the account's own posts as the platform shows it (for reconciling)."""

    external_id: str
    text: str
    published_at: datetime


class Capabilities(Frozen):
    """What a channel can do, so the bot decides without trying and failing."""

    private_reply: bool = False
    public_reply: bool = False
    publish: bool = False
    attachments: bool = False
    max_text_chars: int = 280
