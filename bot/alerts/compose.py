"""The alert email: what an officer needs to act, and nothing about the student.

Email leaves the force's systems and sits in mailboxes and phones, so it carries only the
case's reference, priority, scenarios, channel, times and a link to the case in the
console; never the message text, the author's name, handle or id, nor the conversation.
The templates (templates/alerts/) are given exactly those values and no more.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.models import Alert, AlertNotification, AlertReason, Case
from bot.templating import TEMPLATES_DIR, text_environment

PRIORITY_LABELS = {
    "P1": "risk to life",
    "P2": "urgent",
    "P3": "report or intelligence",
    "P4": "general",
}
WIDTH = 72
CHANNEL_NAMES = {"twitter": "X (Twitter)", "facebook": "Facebook", "in_the_know": "In The Know"}


@dataclass(frozen=True)
class AlertEmail:
    recipient: str
    message: EmailMessage


def case_link(settings: Settings, case_id: int) -> str:
    return f"{settings.public_base_url.rstrip('/')}/cases/{case_id}"


def _local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%a %d %b %Y, %H:%M %Z")


def _duration(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min"]
    return " ".join(p for p in parts if p)


def template_context(alert: Alert, case: Case, settings: Settings) -> dict[str, object]:
    """The only values an alert template can use: none of them identifies the student."""
    tz = settings.tz
    case_id = case.id or 0
    return {
        "reference": case.reference or f"case {case_id}",
        "priority": alert.priority,
        "priority_label": PRIORITY_LABELS.get(alert.priority, alert.priority),
        "current_priority": case.priority,
        "scenarios": [s.replace("_", " ") for s in case.scenarios] or ["none recognised"],
        "channel": CHANNEL_NAMES.get(case.channel, case.channel),
        "opened_at": _local(case.opened_at, tz),
        "sla_due_at": _local(case.sla_due_at, tz),
        "overdue_by": _duration(alert.raised_at - case.sla_due_at),
        "raised_at": _local(alert.raised_at, tz),
        "status": case.status.replace("_", " "),
        "link": case_link(settings, case_id),
        "team_name": settings.account.team_name,
        "route": alert.route,
    }


def _wrapped(body: str) -> str:
    """Lines of at most 72 characters (links excepted), so the email is plain 7-bit text
    that reads the same in every client; templates write each paragraph on one line."""
    lines = [
        textwrap.fill(line, WIDTH, break_long_words=False, break_on_hyphens=False) or line
        for line in body.strip().splitlines()
    ]
    return "\n".join(lines) + "\n"


def compose(
    notification: AlertNotification, alert: Alert, case: Case, settings: Settings
) -> AlertEmail:
    """Render the email for one notification. Raises ``jinja2.TemplateError`` on a bad template."""
    context = template_context(alert, case, settings)
    environment = text_environment(TEMPLATES_DIR)
    reason = AlertReason(alert.reason)
    kind = "sla_breach" if reason is AlertReason.SLA_BREACH else "priority"
    subject = environment.get_template(f"alerts/{kind}.subject.j2").render(**context)
    body = environment.get_template(f"alerts/{kind}.txt.j2").render(**context)
    sender = settings.smtp.from_address or ""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = notification.recipient
    message["Subject"] = " ".join(subject.split())  # one line, whatever the template did
    message["Date"] = format_datetime(alert.raised_at)
    # The same id on every try, so a mail client shows an email resent after a crash once.
    domain = sender.rpartition("@")[2] or "campusbot.invalid"
    message["Message-ID"] = f"<campusbot.alert-notification.{notification.id}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    if alert.priority in ("P1", "P2") or reason is AlertReason.SLA_BREACH:
        message["Importance"] = "high"
        message["X-Priority"] = "1"
    message.set_content(_wrapped(body))
    return AlertEmail(recipient=notification.recipient, message=message)
