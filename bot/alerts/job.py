"""The worker's alerts job: raise what is due, then send what is queued.

Schedule it every 15 seconds (``ALERTS_EVERY_SECONDS``) so a P1 case reaches an officer
within moments of being triaged. It is safe on every worker at once: raising skips
alerts another worker raised, and each email is claimed before it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.alerts.raising import raise_alerts
from bot.alerts.sending import send_due

if TYPE_CHECKING:
    from bot.app import App

ALERTS_EVERY_SECONDS = 15


@dataclass
class AlertReport:
    priority_alerts: int = 0
    sla_escalations: int = 0
    emails_queued: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    rerouted: int = 0
    requeued_after_crash: int = 0


def run_alerts(app: App) -> AlertReport:
    with app.db.session() as session:
        raised = raise_alerts(session, app.settings, app.clock.now())
    report = AlertReport(
        priority_alerts=raised.priority_alerts,
        sla_escalations=raised.sla_escalations,
        emails_queued=raised.emails_queued,
    )
    if app.settings.alerts.email:
        sent = send_due(app.db, app.settings, app.clock)
        report.sent, report.retrying, report.failed = sent.sent, sent.retrying, sent.failed
        report.rerouted, report.requeued_after_crash = sent.rerouted, sent.requeued_after_crash
    return report
