"""Posts to the account's own timeline or page (campaigns and alerts)."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

from bot.models.base import optional_utc, utc_field


class PostStatus(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"


class Post(SQLModel, table=True):
    __tablename__ = "posts"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32, index=True)
    campaign: str | None = Field(default=None, max_length=128, index=True)
    text: str = Field(sa_type=Text)
    link: str | None = Field(default=None, max_length=2048)
    status: str = Field(default=PostStatus.DRAFT, sa_type=String(20), index=True)
    scheduled_for: datetime | None = optional_utc()
    created_by: str = Field(max_length=128)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    external_id: str | None = Field(default=None, max_length=256)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)
