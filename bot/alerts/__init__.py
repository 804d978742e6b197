"""Alerts: P1/P2 cases and cases past their SLA reach officers by email and in the console.

- ``run_alerts(app)`` is the worker job (bot/alerts/job.py).
- The console reads ``alerts_for``, ``unread_count``, ``mark_read``, and for admins
  ``failed_notifications`` and ``retry_notification`` (bot/alerts/console.py).
"""

from bot.alerts.console import (
    ConsoleAlert,
    FailedNotification,
    alerts_for,
    failed_notifications,
    mark_read,
    retry_notification,
    sees_alerts,
    unread_count,
)
from bot.alerts.job import ALERTS_EVERY_SECONDS, AlertReport, run_alerts

__all__ = [
    "ALERTS_EVERY_SECONDS",
    "AlertReport",
    "ConsoleAlert",
    "FailedNotification",
    "alerts_for",
    "failed_notifications",
    "mark_read",
    "retry_notification",
    "run_alerts",
    "sees_alerts",
    "unread_count",
]
