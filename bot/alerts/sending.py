"""Send queued alert emails: retry what can succeed later, keep what cannot, lose nothing.

Each email is claimed (queued -> sending, a conditional UPDATE, so two workers never take
the same one) and committed before it is sent. Outcomes:

- accepted: ``sent``.
- a 4xx reply, or the server unreachable: back to ``queued`` with a backoff (the replies'
  schedule, bot.delivery.backoff); after ``alerts.max_attempts`` tries it is ``failed``.
- a 5xx reply (no such mailbox): ``failed`` at once, and the alert is re-sent to the
  control room, so a mistyped address on the rota does not swallow it.

Failed emails are kept with their last error (``failed_notifications``) and a person can
queue one again (``retry_notification``). Every try is audited.

An email left ``sending`` by a crash is queued again rather than failed (unlike a reply to
a student): the outcome is unknown, and a second copy of an alert in an officer's inbox
costs far less than a P1 alert that never arrived. Its Message-ID is the same each time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from jinja2 import TemplateError
from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from bot import bulk
from bot.alerts.compose import compose
from bot.alerts.raising import NOTIFICATIONS
from bot.clock import Clock
from bot.config import Settings
from bot.crud import audit
from bot.db import Database
from bot.delivery import backoff
from bot.errors import PermanentError, TransientError
from bot.mailer import ConnectionLost, Mailer, reply_code
from bot.models import Alert, AlertNotification, Case, NotificationStatus

log = logging.getLogger(__name__)

STALE_SENDING = timedelta(minutes=10)


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    rerouted: int = 0
    requeued_after_crash: int = 0


def send_due(
    db: Database,
    settings: Settings,
    clock: Clock,
    *,
    limit: int = 100,
) -> SendReport:
    """Send up to ``limit`` due emails over one connection, P1 first; stop early if the
    server goes."""
    report = SendReport()
    report.requeued_after_crash = _requeue_stale(db, settings, clock)
    with db.session() as session:
        due = session.exec(
            select(AlertNotification.id)
            .join(Alert, col(Alert.id) == col(AlertNotification.alert_id))
            .where(
                AlertNotification.status == NotificationStatus.QUEUED,
                or_(
                    col(AlertNotification.next_attempt_at).is_(None),
                    col(AlertNotification.next_attempt_at) <= clock.now(),
                ),
            )
            .order_by(col(Alert.priority), col(AlertNotification.id))
            .limit(limit)
        ).all()
    if not due:
        return report
    with Mailer(settings.smtp) as smtp:
        for notification_id in (i for i in due if i is not None):
            claimed = _claim(db, notification_id, clock)
            if claimed is None:
                continue
            notification, alert, case = claimed
            try:
                email = compose(notification, alert, case, settings)
                smtp.send(email.message, email.recipient)
            except ConnectionLost as exc:
                _retry_or_fail(db, notification, settings, clock, exc, report)
                log.warning("alert emails paused until the next round: %s", exc)
                break
            except (TransientError, TemplateError) as exc:
                _retry_or_fail(db, notification, settings, clock, exc, report)
            except PermanentError as exc:
                _fail(db, notification, clock, str(exc), code=reply_code(exc))
                report.failed += 1
                report.rerouted += _reroute(db, notification, alert, settings, clock)
            else:
                _mark_sent(db, notification, clock)
                report.sent += 1
    return report


def _claim(
    db: Database, notification_id: int, clock: Clock
) -> tuple[AlertNotification, Alert, Case] | None:
    with db.session() as session:
        claimed = session.execute(
            update(AlertNotification)
            .where(
                col(AlertNotification.id) == notification_id,
                col(AlertNotification.status) == NotificationStatus.QUEUED,
            )
            .values(
                status=NotificationStatus.SENDING,
                attempts=col(AlertNotification.attempts) + 1,
                next_attempt_at=clock.now(),
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        notification = session.get(AlertNotification, notification_id)
        alert = session.get(Alert, notification.alert_id) if notification else None
        case = session.get(Case, alert.case_id) if alert else None
        if notification is None or alert is None or case is None:
            return None  # removed with its case meanwhile (retention, erasure)
        return notification, alert, case


def _audit(
    session: Session, row: AlertNotification, at: datetime, action: str, **detail: object
) -> None:
    alert = session.get(Alert, row.alert_id)
    audit.record(
        session,
        at=at,
        actor="bot",
        action=action,
        entity="alert_notification",
        entity_id=row.id or 0,
        detail={
            "alert_id": row.alert_id,
            "case_id": alert.case_id if alert else None,
            "reason": alert.reason if alert else None,
            "attempt": row.attempts,
            **detail,
        },
    )


def _mark_sent(db: Database, notification: AlertNotification, clock: Clock) -> None:
    now = clock.now()
    with db.session() as session:
        row = session.get(AlertNotification, notification.id)
        if row is None:
            return
        row.status = NotificationStatus.SENT
        row.sent_at = now
        row.next_attempt_at = None
        session.add(row)
        _audit(session, row, now, "alert.email_sent")


def _retry_or_fail(
    db: Database,
    notification: AlertNotification,
    settings: Settings,
    clock: Clock,
    error: Exception,
    report: SendReport,
) -> None:
    if notification.attempts >= settings.alerts.max_attempts:
        _fail(
            db,
            notification,
            clock,
            f"gave up after {notification.attempts} attempts: {error}",
            code=reply_code(error),
        )
        report.failed += 1
        return
    now = clock.now()
    retry_at = now + backoff(notification.attempts)
    with db.session() as session:
        row = session.get(AlertNotification, notification.id)
        if row is None:
            return
        row.status = NotificationStatus.QUEUED
        row.next_attempt_at = retry_at
        row.last_error = str(error)
        session.add(row)
        _audit(
            session,
            row,
            now,
            "alert.email_retrying",
            error=reply_code(error),
            retry_at=retry_at.isoformat(),
        )
    report.retrying += 1


def _fail(
    db: Database, notification: AlertNotification, clock: Clock, error: str, *, code: str
) -> None:
    now = clock.now()
    with db.session() as session:
        row = session.get(AlertNotification, notification.id)
        if row is None:
            return
        row.status = NotificationStatus.FAILED
        row.last_error = error
        session.add(row)
        _audit(session, row, now, "alert.email_failed", error=code)
    log.error("alert email id=%s failed for good: %s", notification.id, error)


def _reroute(
    db: Database,
    notification: AlertNotification,
    alert: Alert,
    settings: Settings,
    clock: Clock,
) -> int:
    """Send the alert to the control room instead; 1 if that queued a new email."""
    control_room = settings.alerts.control_room
    if not control_room or notification.recipient == control_room:
        return 0
    now = clock.now()
    with db.session() as session:
        inserted = bulk.insert_rows(
            session,
            NOTIFICATIONS,
            [
                {
                    "alert_id": alert.id,
                    "recipient": control_room,
                    "status": NotificationStatus.QUEUED.value,
                    "attempts": 0,
                    "next_attempt_at": None,
                    "created_at": now,
                }
            ],
            returning=("id",),
            skip_conflicts_on=("alert_id", "recipient"),
        )
        if inserted:
            audit.record(
                session,
                at=now,
                actor="bot",
                action="alert.rerouted",
                entity="alert_notification",
                entity_id=inserted[0].id,
                detail={
                    "alert_id": alert.id,
                    "case_id": alert.case_id,
                    "instead_of": notification.id,
                },
            )
    return len(inserted)


def _requeue_stale(db: Database, settings: Settings, clock: Clock) -> int:
    """Queue again what a crash left ``sending``; fail what has used up its attempts (a
    crash on every try, e.g. a bug in a template, must not loop forever)."""
    cutoff = clock.now() - STALE_SENDING
    with db.session() as session:
        stale = session.exec(
            select(AlertNotification).where(
                AlertNotification.status == NotificationStatus.SENDING,
                col(AlertNotification.next_attempt_at) < cutoff,
            )
        ).all()
        for row in stale:
            if row.attempts >= settings.alerts.max_attempts:
                row.status = NotificationStatus.FAILED
                row.last_error = f"interrupted while sending, {row.attempts} times: gave up"
                action = "alert.email_failed"
            else:
                row.status = NotificationStatus.QUEUED
                row.next_attempt_at = None
                row.last_error = "interrupted while sending; sent again (it may arrive twice)"
                action = "alert.email_requeued"
            session.add(row)
            _audit(session, row, clock.now(), action, error="interrupted")
            log.warning("alert email id=%s interrupted mid-send: %s", row.id, row.last_error)
        return sum(row.status == NotificationStatus.QUEUED for row in stale)
