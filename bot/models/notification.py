"""Alerts about urgent or overdue cases, the emails that carry them, and who has seen them.

An ``Alert`` is raised once per case per reason (the unique constraint makes raising
idempotent, even from two workers at once); the console lists alerts. Each alert fans out
to one ``AlertNotification`` per email recipient, the outbox the alerts job sends from.
Notifications are never deleted by the bot: a failed one stays, with its last error, for
a person to see. Both go with their case when retention or erasure removes it.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.models.base import optional_utc, utc_field


class AlertReason(StrEnum):
    PRIORITY_P1 = "priority_p1"  # the case is, or has become, P1 (risk to life)
    PRIORITY_P2 = "priority_p2"  # the case is, or has become, P2 (urgent)
    SLA_BREACH = "sla_breach"  # past its SLA with no human reply


class AlertRoute(StrEnum):
    ON_DUTY = "on_duty"  # office hours: the officers on duty
    CONTROL_ROOM = "control_room"  # out of hours: the force control room
    NEXT_SHIFT = "next_shift"  # an overdue P3/P4 found out of hours: on duty at next opening


class NotificationStatus(StrEnum):
    QUEUED = "queued"  # waiting for its first try, or for its next one after a failure
    SENDING = "sending"
    SENT = "sent"  # accepted by the mail server
    FAILED = "failed"  # refused for good, or out of attempts: kept for a person to see


class Alert(SQLModel, table=True):
    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("case_id", "reason", name="uq_alerts_case_reason"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    reason: str = Field(sa_type=String(16))
    priority: str = Field(sa_type=String(2))  # the case's priority when the alert was raised
    route: str = Field(sa_type=String(16))
    raised_at: datetime = utc_field(index=True)


class AlertNotification(SQLModel, table=True):
    __tablename__ = "alert_notifications"
    __table_args__ = (
        UniqueConstraint("alert_id", "recipient", name="uq_alert_notifications_recipient"),
    )

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    recipient: str = Field(max_length=254)  # an email address (RFC 5321's limit)
    status: str = Field(default=NotificationStatus.QUEUED, sa_type=String(16), index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = optional_utc()
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = utc_field()
    sent_at: datetime | None = optional_utc()


class AlertReadMark(SQLModel, table=True):
    """How far through the alerts each console user has read: one watermark per user."""

    __tablename__ = "alert_read_marks"

    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    seen_up_to: int = 0  # the highest alert id the user has marked read
    updated_at: datetime = utc_field()
