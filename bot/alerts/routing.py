"""Who hears about a case: the officers on duty in office hours, the control room outside them.

Office hours are kept in the bot's timezone (Europe/London), so they follow the clocks
changing. One exception to "out of hours means the control room": a P3 or P4 case that
has run past its SLA is overdue, not urgent, so it waits for the officers' next shift
rather than taking up the control room's time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import OfficeHoursSettings, Settings
from bot.errors import ConfigError
from bot.models import AlertReason, AlertRoute, Priority

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
URGENT_PRIORITIES = frozenset({Priority.P1.value, Priority.P2.value})
_LOOKAHEAD_DAYS = 400  # bank holidays can close a few weeks; a year and more is a mistake


@dataclass(frozen=True)
class Recipients:
    route: AlertRoute
    addresses: tuple[str, ...]
    not_before: datetime | None = None  # when a deferred email may first be sent


def _working_day(day: date, hours: OfficeHoursSettings) -> bool:
    return WEEKDAYS[day.weekday()] in hours.days and day not in hours.bank_holidays


def in_office_hours(at: datetime, tz: ZoneInfo, hours: OfficeHoursSettings) -> bool:
    local = at.astimezone(tz)
    return _working_day(local.date(), hours) and hours.start <= local.time() < hours.end


def next_opening(at: datetime, tz: ZoneInfo, hours: OfficeHoursSettings) -> datetime:
    """The start of the next office day after ``at`` (UTC)."""
    today = at.astimezone(tz).date()
    for offset in range(_LOOKAHEAD_DAYS):
        day = today + timedelta(days=offset)
        if not _working_day(day, hours):
            continue
        opening = datetime.combine(day, hours.start, tzinfo=tz)
        if opening > at:
            return opening.astimezone(UTC)
    raise ConfigError(
        f"alerts.office_hours has no working day in the next {_LOOKAHEAD_DAYS} days; "
        "check days and bank_holidays"
    )


def recipients_for(
    reason: AlertReason, priority: str, at: datetime, settings: Settings
) -> Recipients:
    alerts = settings.alerts
    hours = alerts.office_hours
    if in_office_hours(at, settings.tz, hours):
        return Recipients(AlertRoute.ON_DUTY, tuple(alerts.on_duty))
    if reason is AlertReason.SLA_BREACH and priority not in URGENT_PRIORITIES:
        return Recipients(
            AlertRoute.NEXT_SHIFT, tuple(alerts.on_duty), next_opening(at, settings.tz, hours)
        )
    control_room = (alerts.control_room,) if alerts.control_room else ()
    return Recipients(AlertRoute.CONTROL_ROOM, control_room)
