"""Posts to the account's own timeline or page (campaigns and alerts), and their approvals."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

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


_VERSION = Column("version", Integer, nullable=False, server_default="1")


class PostKind(StrEnum):
    CAMPAIGN = "campaign"  # paused by `posts pause-all` during a critical incident
    ALERT = "alert"  # information an officer shares out; never paused


class Post(SQLModel, table=True):
    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("campaign", "channel", "scheduled_for", name="uq_posts_campaign_slot"),
    )

    # Optimistic locking: every UPDATE checks the version it read, so an approval and an edit
    # (or a claim) racing in two processes cannot both win; the loser gets StaleDataError.
    __mapper_args__ = {"version_id_col": _VERSION}

    id: int | None = Field(default=None, primary_key=True)
    version: int = Field(default=1, sa_column=_VERSION)
    kind: str = Field(default=PostKind.CAMPAIGN, sa_type=String(16))
    channel: str = Field(max_length=32, index=True)
    campaign: str | None = Field(default=None, max_length=128, index=True)
    text: str = Field(sa_type=Text)
    link: str | None = Field(default=None, max_length=2048)
    status: str = Field(default=PostStatus.DRAFT, sa_type=String(20), index=True)
    scheduled_for: datetime | None = optional_utc()
    created_by: str = Field(max_length=128)
    edited_by: str | None = Field(default=None, max_length=128)  # who wrote the current wording
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    note: str | None = Field(default=None, sa_type=Text)  # the reason for a rejection
    external_id: str | None = Field(default=None, max_length=256)
    attempts: int = 0
    attempt_started_at: datetime | None = optional_utc()
    not_before: datetime | None = optional_utc()  # after a rate limit or an outage
    published_at: datetime | None = optional_utc()
    last_error: str | None = Field(default=None, sa_type=Text)


class PostApproval(SQLModel, table=True):
    """One tier's approval of one wording of a post; an edit clears them."""

    __tablename__ = "post_approvals"
    __table_args__ = (UniqueConstraint("post_id", "tier", name="uq_post_approval_tier"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(
        sa_column=Column(Integer, ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    )
    tier: int
    approver: str = Field(max_length=128)
    approved_at: datetime = utc_field()
