"""`campusbot metrics import`: load figures exported from the platforms (or a pilot's report).

A file is checked whole before anything is written: one bad row refuses the file with every
problem listed, so an import is never half applied. Re-importing the same figures updates
them in place (one value per channel, account, day or period, and metric).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from bot.errors import BotError
from bot.models import ChannelDailyMetric, ChannelPeriodMetric

MAX_FILE_BYTES = 64 * 1024 * 1024
CHANNELS = ("twitter", "facebook", "in_the_know")


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field(pattern="^(twitter|facebook|in_the_know)$")
    account: str = Field(min_length=1, max_length=128)
    metric: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    value: float = Field(ge=0, allow_inf_nan=False)


class DailyRow(_Row):
    day: date


class PeriodRow(_Row):
    start: date
    end: date
    note: str | None = Field(default=None, max_length=512)

    @model_validator(mode="after")
    def _ordered(self) -> PeriodRow:
        if self.end < self.start:
            raise ValueError("end is before start")
        return self


class MetricsFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    daily: list[DailyRow] = Field(default_factory=list)
    periods: list[PeriodRow] = Field(default_factory=list)


def read_metrics_file(path: Path) -> MetricsFile:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise BotError(f"{path.name}: larger than {MAX_FILE_BYTES // 2**20} MiB")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BotError(f"{path.name}: not valid JSON ({exc})") from None
    try:
        return MetricsFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:20]
        )
        raise BotError(f"{path.name}: {problems}") from None


def upsert(session: Session, model: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert snapshot rows, or update those already there on ``keys``: reruns never add."""
    if not rows:
        return
    # A key twice in one file: the last value wins (PostgreSQL refuses one statement that
    # would update the same row twice).
    rows = list({tuple(row[k] for k in keys): row for row in rows}.values())
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), 5000):
        statement = insert(model.__table__).values(rows[start : start + 5000])
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={c: statement.excluded[c] for c in ("value", "recorded_at")},
        )
        session.execute(statement)


def import_metrics(session: Session, figures: MetricsFile, *, at: datetime) -> tuple[int, int]:
    daily = [{**r.model_dump(), "recorded_at": at} for r in figures.daily]
    periods = [
        {
            "channel": r.channel,
            "account": r.account,
            "start_day": r.start,
            "end_day": r.end,
            "metric": r.metric,
            "value": r.value,
            "note": r.note,
            "recorded_at": at,
        }
        for r in figures.periods
    ]
    upsert(session, ChannelDailyMetric, daily, ["channel", "account", "day", "metric"])
    upsert(
        session,
        ChannelPeriodMetric,
        periods,
        ["channel", "account", "start_day", "end_day", "metric"],
    )
    return len(daily), len(periods)
