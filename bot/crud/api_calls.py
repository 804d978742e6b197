"""The ledger of billable API calls, and the monthly budget it enforces.

X bills every call: reads per item returned, writes per request, a post with a link far
more. The X adapter records each call it makes here with an estimated cost (the prices in
``twitter.cost``). Once this month's spend reaches ``twitter.cost.monthly_budget``, campaign
posts and history backfills stop with ``BudgetExceeded``; polling mentions and DMs and
replying to students never ask the budget, so a message about a crime is never missed for
want of money.

The month is the calendar month in the bot's timezone. Costs are estimates: X's own console
is the bill, this is the early warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.config import XCostSettings
from bot.db import Database
from bot.errors import RateLimited
from bot.models.api_call import ApiCall

log = logging.getLogger(__name__)
MICROS = 1_000_000  # costs are stored in millionths of a dollar
UTC_ZONE = ZoneInfo("UTC")


class CostKind(StrEnum):
    """The price a call is billed at: the names of the fields of ``XCostSettings``."""

    POST_READ = "post_read"
    USER_READ = "user_read"
    DM_READ = "dm_read"
    WRITE = "write"
    WRITE_WITH_URL = "write_with_url"
    MEDIA_UPLOAD = "media_upload"


def price_micros(prices: XCostSettings, kind: CostKind, units: int = 1) -> int:
    """The estimated cost of ``units`` items (reads) or requests (writes) of ``kind``."""
    unit: float = getattr(prices, kind.value)
    return round(unit * MICROS) * units


@dataclass(frozen=True)
class BillableCall:
    channel: str
    method: str
    endpoint: str
    kind: CostKind
    units: int
    cost_micros: int
    purpose: str
    status: int | None


@dataclass(frozen=True)
class BudgetStatus:
    """This month's estimated spend against the budget (``None``: no budget is set)."""

    spent_micros: int
    budget_micros: int | None
    month: str  # e.g. "November 2026"
    resets_at: datetime  # the start of next month, UTC

    @property
    def reached(self) -> bool:
        return self.budget_micros is not None and self.spent_micros >= self.budget_micros

    def allows(self, cost_micros: int) -> bool:
        """Whether a call costing ``cost_micros`` still fits in this month's budget."""
        if self.budget_micros is None:
            return True
        return not self.reached and self.spent_micros + cost_micros <= self.budget_micros

    def describe(self) -> str:
        spent = _dollars(self.spent_micros)
        if self.budget_micros is None:
            return f"X spend this month ({self.month}): {spent}, no budget set"
        budget = _dollars(self.budget_micros)
        if self.reached:
            return (
                f"X budget reached: {spent} of {budget} this month ({self.month}); campaign "
                f"posts and backfills are stopped until {self.resets_at:%Y-%m-%d %H:%M} UTC, "
                "polling and replies go on"
            )
        return f"X spend this month ({self.month}): {spent} of {budget}"


class BudgetExceeded(RateLimited):
    """A campaign post or backfill refused because this month's X budget cannot pay for it.

    A ``RateLimited`` whose ``retry_at`` is the start of next month, so a caller that only
    knows rate limits already does the right thing: keep the post, skip the channel.
    """

    def __init__(
        self, status: BudgetStatus, *, cost_micros: int = 0, channel: str = "twitter"
    ) -> None:
        if status.reached or status.budget_micros is None:
            message = status.describe()
        else:
            message = (
                f"X budget nearly spent: {_dollars(status.spent_micros)} of "
                f"{_dollars(status.budget_micros)} this month ({status.month}), and this would "
                f"cost {_dollars(cost_micros)} more; campaign posts wait until "
                f"{status.resets_at:%Y-%m-%d %H:%M} UTC"
            )
        super().__init__(message, retry_at=status.resets_at, channel=channel)
        self.status = status


def _dollars(micros: int) -> str:
    """Dollars and cents, with a tenth of a cent where X's prices have one ($0.015)."""
    places = 2 if micros % 10_000 == 0 else 3
    return f"${micros / MICROS:,.{places}f}"


def record(session: Session, call: BillableCall, *, at: datetime) -> ApiCall:
    row = ApiCall(
        channel=call.channel,
        method=call.method,
        endpoint=call.endpoint,
        kind=call.kind.value,
        units=call.units,
        cost_micros=call.cost_micros,
        purpose=call.purpose,
        status=call.status,
        at=at,
    )
    session.add(row)
    return row


def month_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The start of ``now``'s calendar month in ``tz`` and of the next one, both in UTC."""
    local = now.astimezone(tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else (start.replace(month=start.month + 1))
    )
    return start.astimezone(UTC), following.astimezone(UTC)


def spent_micros(session: Session, channel: str, start: datetime, end: datetime) -> int:
    total = session.exec(
        select(func.coalesce(func.sum(ApiCall.cost_micros), 0)).where(
            ApiCall.channel == channel, col(ApiCall.at) >= start, col(ApiCall.at) < end
        )
    ).one()
    return int(total)


def budget_status(
    session: Session,
    prices: XCostSettings,
    *,
    now: datetime,
    tz: ZoneInfo,
    channel: str = "twitter",
) -> BudgetStatus:
    """For the console and CLI: ``budget_status(...).describe()`` says where the month stands."""
    start, end = month_bounds(now, tz)
    return _status(spent_micros(session, channel, start, end), prices, start, end, tz)


def _status(
    spent: int, prices: XCostSettings, start: datetime, end: datetime, tz: ZoneInfo
) -> BudgetStatus:
    budget = prices.monthly_budget
    return BudgetStatus(
        spent_micros=spent,
        budget_micros=None if budget is None else round(budget * MICROS),
        month=f"{start.astimezone(tz):%B %Y}",
        resets_at=end,
    )


def ensure_within_budget(
    session: Session,
    prices: XCostSettings,
    *,
    now: datetime,
    tz: ZoneInfo,
    cost_micros: int = 0,
    channel: str = "twitter",
) -> BudgetStatus:
    """Raise ``BudgetExceeded`` unless a call costing ``cost_micros`` fits this month."""
    status = budget_status(session, prices, now=now, tz=tz, channel=channel)
    if not status.allows(cost_micros):
        raise BudgetExceeded(status, cost_micros=cost_micros, channel=channel)
    return status


class CallLedger(Protocol):
    """What an adapter needs of the ledger; the adapter itself never touches the database."""

    prices: XCostSettings

    def record(self, call: BillableCall) -> None: ...

    def budget(self) -> BudgetStatus: ...


class DbLedger:
    """The ledger in the bot's database, for the adapters the app builds."""

    def __init__(self, db: Database, prices: XCostSettings, clock: Clock, tz: ZoneInfo) -> None:
        self.db = db
        self.prices = prices
        self.clock = clock
        self.tz = tz

    def record(self, call: BillableCall) -> None:
        """Never raises: the call has happened, and its result matters more than its cost."""
        try:
            with self.db.session() as session:
                record(session, call, at=self.clock.now())
        except SQLAlchemyError:
            log.exception(
                "could not record an X call in the ledger: %s %s %s units, %s micro-dollars",
                call.method,
                call.endpoint,
                call.units,
                call.cost_micros,
            )

    def budget(self) -> BudgetStatus:
        with self.db.session() as session:
            return budget_status(session, self.prices, now=self.clock.now(), tz=self.tz)


class MemoryLedger:
    """Keeps calls in memory: for an adapter built without a database (tests, one-off tools)."""

    def __init__(self, prices: XCostSettings, clock: Clock, tz: ZoneInfo = UTC_ZONE) -> None:
        self.prices = prices
        self.clock = clock
        self.tz = tz
        self.calls: list[tuple[datetime, BillableCall]] = []

    def record(self, call: BillableCall) -> None:
        now = self.clock.now()
        start, _ = month_bounds(now, self.tz)
        if self.calls and self.calls[0][0] < start:  # only this month counts: drop the rest
            self.calls = [(at, kept) for at, kept in self.calls if at >= start]
        self.calls.append((now, call))

    def budget(self) -> BudgetStatus:
        start, end = month_bounds(self.clock.now(), self.tz)
        spent = sum(call.cost_micros for at, call in self.calls if start <= at < end)
        return _status(spent, self.prices, start, end, self.tz)
