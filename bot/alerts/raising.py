"""Find the cases that need an alert, raise each alert once, and queue its emails.

Reasons, each raised at most once per case (a unique constraint, so two workers racing
raise it once between them):

- ``priority_p1`` / ``priority_p2``: an open case is P1 or P2 and nobody has replied yet.
  A P2 case later raised to P1 alerts again, because "risk to life" is news; a P1 case
  gets no separate P2 alert.
- ``sla_breach``: an open case is past ``sla_due_at`` with no human reply. This is the
  escalation: the alert and its email go to the people on the route, flagged overdue.
  The case's priority is left alone: priority records the assessed harm (P1 is risk to
  life) and sets the SLA itself, so bumping it for lateness would misstate the risk in
  the inbox and in reports. Being overdue is shown as such instead.

Cases are found by looking at the cases table, not by hooking the pipeline, so an alert
is raised however a case became urgent (a message, a console edit) and after any outage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, exists, or_, select
from sqlmodel import Session

from bot import bulk
from bot.alerts.routing import Recipients, recipients_for
from bot.config import Settings
from bot.crud import audit
from bot.models import (
    Alert,
    AlertNotification,
    AlertReason,
    Case,
    CaseStatus,
    NotificationStatus,
    Priority,
)

CASES = cast(Table, Case.__table__)  # type: ignore[attr-defined]
ALERTS = cast(Table, Alert.__table__)  # type: ignore[attr-defined]
NOTIFICATIONS = cast(Table, AlertNotification.__table__)  # type: ignore[attr-defined]


@dataclass
class RaiseReport:
    priority_alerts: int = 0
    sla_escalations: int = 0
    emails_queued: int = 0


def _alerted(*reasons: AlertReason) -> Any:
    return exists().where(
        ALERTS.c.case_id == CASES.c.id, ALERTS.c.reason.in_([r.value for r in reasons])
    )


def _unanswered_open() -> Any:
    return and_(CASES.c.status != CaseStatus.CLOSED.value, CASES.c.first_human_reply_at.is_(None))


def _due(session: Session, now: datetime, limit: int) -> list[tuple[int, str, AlertReason]]:
    """(case id, priority, reason) of every alert not yet raised, oldest cases first."""
    urgent = session.execute(
        select(CASES.c.id, CASES.c.priority)
        .where(
            _unanswered_open(),
            or_(
                and_(
                    CASES.c.priority == Priority.P1.value,
                    ~_alerted(AlertReason.PRIORITY_P1),
                ),
                and_(
                    CASES.c.priority == Priority.P2.value,
                    ~_alerted(AlertReason.PRIORITY_P1, AlertReason.PRIORITY_P2),
                ),
            ),
        )
        .order_by(CASES.c.id)
        .limit(limit)
    ).all()
    overdue = session.execute(
        select(CASES.c.id, CASES.c.priority)
        .where(
            _unanswered_open(),
            CASES.c.sla_due_at <= now,
            ~_alerted(AlertReason.SLA_BREACH),
        )
        .order_by(CASES.c.id)
        .limit(limit)
    ).all()
    due = [
        (
            case_id,
            priority,
            AlertReason.PRIORITY_P1 if priority == Priority.P1 else AlertReason.PRIORITY_P2,
        )
        for case_id, priority in urgent
    ]
    due.extend((case_id, priority, AlertReason.SLA_BREACH) for case_id, priority in overdue)
    return due


def raise_alerts(
    session: Session, settings: Settings, now: datetime, *, limit: int = 500
) -> RaiseReport:
    """Raise the alerts now due and, when alerts are emailed, queue one email per recipient."""
    report = RaiseReport()
    due = _due(session, now, limit)
    if not due:
        return report
    routes: dict[tuple[int, str], tuple[str, Recipients]] = {
        (case_id, reason.value): (priority, recipients_for(reason, priority, now, settings))
        for case_id, priority, reason in due
    }
    inserted = bulk.insert_rows(
        session,
        ALERTS,
        [
            {
                "case_id": case_id,
                "reason": reason,
                "priority": priority,
                "route": recipients.route.value,
                "raised_at": now,
            }
            for (case_id, reason), (priority, recipients) in routes.items()
        ],
        returning=("id", "case_id", "reason"),
        skip_conflicts_on=("case_id", "reason"),
    )
    emails: list[dict[str, Any]] = []
    events: list[audit.Event] = []
    for row in sorted(inserted, key=lambda r: cast(int, r.id)):
        priority, recipients = routes[(row.case_id, row.reason)]
        addresses = recipients.addresses if settings.alerts.email else ()
        emails.extend(
            {
                "alert_id": row.id,
                "recipient": address,
                "status": NotificationStatus.QUEUED.value,
                "attempts": 0,
                "next_attempt_at": recipients.not_before,
                "created_at": now,
            }
            for address in addresses
        )
        if row.reason == AlertReason.SLA_BREACH:
            report.sla_escalations += 1
        else:
            report.priority_alerts += 1
        events.append(
            audit.Event(
                at=now,
                actor="bot",
                action="alert.raised",
                entity="case",
                entity_id=row.case_id,
                detail={
                    "alert_id": row.id,
                    "reason": row.reason,
                    "priority": priority,
                    "route": recipients.route.value,
                    "emails": len(addresses),
                    "not_before": (
                        recipients.not_before.isoformat() if recipients.not_before else None
                    ),
                },
            )
        )
    report.emails_queued = len(
        bulk.insert_rows(
            session,
            NOTIFICATIONS,
            emails,
            returning=("id",),
            skip_conflicts_on=("alert_id", "recipient"),
        )
    )
    audit.record_many(session, events)
    return report
