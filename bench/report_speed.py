"""A year's report over 1,000,000 metric rows and 200,000 messages, on SQLite and PostgreSQL,
beside a naive baseline that loads the rows into Python and aggregates them there."""

from __future__ import annotations

import random
import tempfile
import time
import tracemalloc
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, text

from bot import migrate
from bot.db import Database
from bot.models import Case, ChannelDailyMetric, Message, MessageScenario
from bot.paths import ROOT
from bot.reports import ReportQuery, build_report
from schedules.campaigns import load_campaigns

METRIC_ROWS = 1_000_000
MESSAGES = 200_000
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LONDON = ZoneInfo("Europe/London")
FIRST_DAY = date(2024, 1, 1)
SCENARIOS = [
    "theft",
    "drugs",
    "criminal_damage",
    "anti_social_behaviour",
    "mental_health",
    "violent_crime",
]


def _metric_rows() -> list[dict[str, Any]]:
    rng = random.Random(1)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    metrics = ["reach", "views", "followers_gained", "likes_gained", "members_new"]
    accounts = [f"acct{i}" for i in range(100)]
    day_count = METRIC_ROWS // (3 * len(metrics) * len(accounts)) + 1
    for channel in ("twitter", "facebook", "in_the_know"):
        for account in accounts:
            for offset in range(day_count):
                for metric in metrics:
                    rows.append(
                        {
                            "channel": channel,
                            "account": account,
                            "day": FIRST_DAY + timedelta(days=offset),
                            "metric": metric,
                            "value": float(rng.randint(0, 5000)),
                            "recorded_at": now,
                        }
                    )
                    if len(rows) == METRIC_ROWS:
                        return rows
    return rows


def _fill(db: Database) -> None:
    rng = random.Random(2)
    start = datetime.combine(FIRST_DAY, datetime.min.time(), tzinfo=UTC)
    with db.engine.begin() as connection:
        rows = _metric_rows()
        for i in range(0, len(rows), 20_000):
            connection.execute(insert(ChannelDailyMetric), rows[i : i + 20_000])
        messages, cases, tags = [], [], []
        for i in range(1, MESSAGES + 1):
            at = start + timedelta(seconds=rng.randint(0, 700 * 86400))
            messages.append(
                {
                    "id": i,
                    "channel": "twitter",
                    "external_id": str(i),
                    "conversation_id": str(i),
                    "author_id": f"u{i % 5000}",
                    "text": "x",
                    "private": True,
                    "addressed_to_account": True,
                    "received_at": at,
                    "ingested_at": at,
                    "raw": None,
                    "state": "processed",
                    "scenarios": [],
                    "scores": {},
                }
            )
            if i % 7 == 0:
                tags.append({"message_id": i, "scenario": SCENARIOS[i % 6]})
            if i % 20 == 0:
                cases.append(
                    {
                        "channel": "twitter",
                        "conversation_id": str(i),
                        "author_id": "u",
                        "status": "closed",
                        "priority": "P2",
                        "scenarios": [],
                        "urgent": True,
                        "risk": i % 60 == 0,
                        "needs_human": False,
                        "opened_at": at,
                        "updated_at": at,
                        "sla_due_at": at + timedelta(hours=1),
                        "first_human_reply_at": at + timedelta(minutes=rng.randint(1, 200)),
                    }
                )
        for table, batch in ((Message, messages), (MessageScenario, tags), (Case, cases)):
            for i in range(0, len(batch), 20_000):
                connection.execute(insert(table), batch[i : i + 20_000])
    with db.engine.begin() as connection:
        connection.execute(text("ANALYZE"))  # fresh statistics, as a live database has


def _ours(db: Database) -> tuple[float, float]:
    campaigns = load_campaigns(ROOT / "schedules" / "campaigns")
    query = ReportQuery(start=date(2025, 1, 1), end=date(2025, 12, 31), tz=LONDON)
    tracemalloc.start()
    started = time.perf_counter()
    with db.session() as session:
        build_report(session, query, campaigns)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return elapsed, peak


def _naive(db: Database) -> float:
    """Load the year's metric and message rows and aggregate them in Python loops."""
    started = time.perf_counter()
    reach: dict[tuple[date, str], float] = defaultdict(float)
    per_day: dict[tuple[date, str], int] = defaultdict(int)
    with db.engine.connect() as connection:
        table: Any = ChannelDailyMetric.__table__  # type: ignore[attr-defined]
        for day, channel, metric, value in connection.execute(
            select(table.c.day, table.c.channel, table.c.metric, table.c.value)
        ):
            if date(2025, 1, 1) <= day <= date(2025, 12, 31) and metric == "reach":
                reach[(day, channel)] += value
        messages: Any = Message.__table__  # type: ignore[attr-defined]
        for (received,) in connection.execute(select(messages.c.received_at)):
            local = received.replace(tzinfo=UTC).astimezone(LONDON).date()
            if local.year == 2025:
                per_day[(local, "any")] += 1
    return time.perf_counter() - started


def _measure(db: Database, label: str) -> list[dict[str, Any]]:
    migrate.upgrade(db)
    _fill(db)
    ours, peak = _ours(db)
    naive = _naive(db)
    return [
        {
            "metric": f"{label}: report over 1M metric rows + 200k messages (s)",
            "ours": round(ours, 2),
            "baseline": round(naive, 2),
            "ratio": round(ours / naive, 2),
        },
        {
            "metric": f"{label}: peak Python memory while reporting (MB)",
            "ours": round(peak, 1),
            "baseline": None,
            "ratio": None,
        },
    ]


def run() -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = Database.from_url(f"sqlite:///{Path(tmp) / 'report.db'}")
        rows += _measure(sqlite, "SQLite")
        sqlite.dispose()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = Database.from_url(PG_URL)
    try:
        with admin.engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        pg = Database.from_url(PG_URL, search_path=schema)
        rows += _measure(pg, "PostgreSQL")
        pg.dispose()
    except Exception as exc:
        rows.append(
            {
                "metric": f"PostgreSQL unavailable: {type(exc).__name__}",
                "ours": None,
                "baseline": None,
                "ratio": None,
            }
        )
    finally:
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    return {"metric_rows": METRIC_ROWS, "messages": MESSAGES, "rows": rows}
