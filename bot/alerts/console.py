"""Alerts as the console shows them: what each signed-in user has not yet seen.

The pages call these functions; they do no routing or role checks of their own beyond
this: alerts are for the people who triage (officers and admins). Each user has one
watermark, the highest alert id they have marked read, so "unread" costs one row per
user however many alerts there are.

What is listed: every alert raised in the last ``recent`` window, plus older unread ones
whose case is still open (an overdue case does not drop off the list by waiting).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlmodel import Session

from bot.alerts.raising import ALERTS, CASES, NOTIFICATIONS
from bot.crud import audit
from bot.models import AlertNotification, AlertReadMark, CaseStatus, NotificationStatus, Role, User

TRIAGE_ROLES = frozenset({Role.OFFICER.value, Role.ADMIN.value})
RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class ConsoleAlert:
    id: int
    case_id: int
    case_reference: str | None
    reason: str  # priority_p1, priority_p2, sla_breach
    priority: str  # when raised
    route: str  # on_duty, control_room, next_shift
    raised_at: datetime
    unread: bool
    case_status: str
    case_priority: str  # now
    emails_sent: int
    emails_waiting: int  # queued or being sent
    emails_failed: int

    @property
    def path(self) -> str:
        return f"/cases/{self.case_id}"


@dataclass(frozen=True)
class FailedNotification:
    id: int
    alert_id: int
    case_id: int
    case_reference: str | None
    reason: str
    recipient: str
    attempts: int
    last_error: str | None
    created_at: datetime


def sees_alerts(user: User) -> bool:
    return not user.disabled and bool(TRIAGE_ROLES.intersection(user.roles))


def _seen_up_to(session: Session, user: User) -> int:
    mark = session.get(AlertReadMark, user.id)
    return mark.seen_up_to if mark else 0


def _listed(seen_up_to: int, now: datetime, recent: timedelta) -> Any:
    return or_(
        ALERTS.c.raised_at >= now - recent,
        and_(ALERTS.c.id > seen_up_to, CASES.c.status != CaseStatus.CLOSED.value),
    )


def alerts_for(
    session: Session,
    user: User,
    *,
    now: datetime,
    recent: timedelta = RECENT,
    limit: int = 50,
) -> list[ConsoleAlert]:
    """The alerts to show ``user``, newest first; empty for anyone who does not triage."""
    if not sees_alerts(user):
        return []
    seen = _seen_up_to(session, user)
    n = NOTIFICATIONS.c

    def emails(*statuses: NotificationStatus) -> Any:
        return (
            select(func.count())
            .where(n.alert_id == ALERTS.c.id, n.status.in_([s.value for s in statuses]))
            .scalar_subquery()
        )

    rows = session.execute(
        select(
            ALERTS.c.id,
            ALERTS.c.case_id,
            CASES.c.reference,
            ALERTS.c.reason,
            ALERTS.c.priority,
            ALERTS.c.route,
            ALERTS.c.raised_at,
            CASES.c.status,
            CASES.c.priority.label("case_priority"),
            emails(NotificationStatus.SENT).label("sent"),
            emails(NotificationStatus.QUEUED, NotificationStatus.SENDING).label("waiting"),
            emails(NotificationStatus.FAILED).label("failed"),
        )
        .join(CASES, CASES.c.id == ALERTS.c.case_id)
        .where(_listed(seen, now, recent))
        .order_by(ALERTS.c.id.desc())
        .limit(limit)
    ).all()
    return [
        ConsoleAlert(
            id=row.id,
            case_id=row.case_id,
            case_reference=row.reference,
            reason=row.reason,
            priority=row.priority,
            route=row.route,
            raised_at=row.raised_at,
            unread=row.id > seen,
            case_status=row.status,
            case_priority=row.case_priority,
            emails_sent=row.sent,
            emails_waiting=row.waiting,
            emails_failed=row.failed,
        )
        for row in rows
    ]


def unread_count(session: Session, user: User, *, now: datetime, recent: timedelta = RECENT) -> int:
    """For the badge: unread alerts among those ``alerts_for`` lists."""
    if not sees_alerts(user):
        return 0
    seen = _seen_up_to(session, user)
    count = session.execute(
        select(func.count())
        .select_from(ALERTS.join(CASES, CASES.c.id == ALERTS.c.case_id))
        .where(ALERTS.c.id > seen, _listed(seen, now, recent))
    ).scalar_one()
    return int(count)


def mark_read(session: Session, user: User, *, up_to: int, at: datetime) -> None:
    """Mark every alert up to id ``up_to`` read for ``user``; the mark never moves back."""
    if user.id is None:
        raise ValueError("the user has not been saved")
    mark = session.get(AlertReadMark, user.id)
    if mark is None:
        session.add(AlertReadMark(user_id=user.id, seen_up_to=up_to, updated_at=at))
    elif up_to > mark.seen_up_to:
        mark.seen_up_to = up_to
        mark.updated_at = at
        session.add(mark)


def failed_notifications(session: Session, *, limit: int = 100) -> list[FailedNotification]:
    """Emails that could not be sent, newest first, for an admin to see and resend."""
    rows = session.execute(
        select(
            NOTIFICATIONS.c.id,
            NOTIFICATIONS.c.alert_id,
            ALERTS.c.case_id,
            CASES.c.reference,
            ALERTS.c.reason,
            NOTIFICATIONS.c.recipient,
            NOTIFICATIONS.c.attempts,
            NOTIFICATIONS.c.last_error,
            NOTIFICATIONS.c.created_at,
        )
        .join(ALERTS, ALERTS.c.id == NOTIFICATIONS.c.alert_id)
        .join(CASES, CASES.c.id == ALERTS.c.case_id)
        .where(NOTIFICATIONS.c.status == NotificationStatus.FAILED.value)
        .order_by(NOTIFICATIONS.c.id.desc())
        .limit(limit)
    ).all()
    return [
        FailedNotification(
            id=row.id,
            alert_id=row.alert_id,
            case_id=row.case_id,
            case_reference=row.reference,
            reason=row.reason,
            recipient=row.recipient,
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
        )
        for row in rows
    ]


def retry_notification(session: Session, notification_id: int, *, by: str, at: datetime) -> bool:
    """Queue a failed email again with a fresh set of attempts; False if it is not failed."""
    row = session.get(AlertNotification, notification_id)
    if row is None or row.status != NotificationStatus.FAILED:
        return False
    row.status = NotificationStatus.QUEUED
    row.attempts = 0
    row.next_attempt_at = None
    session.add(row)
    audit.record(
        session,
        at=at,
        actor=by,
        action="alert.email_requeued",
        entity="alert_notification",
        entity_id=notification_id,
        detail={"alert_id": row.alert_id, "error": "retried by hand"},
    )
    return True
