"""End-to-end ingest -> classify -> triage of 100,000 replayed messages, SQLite and PostgreSQL.

Shaped like production: one process stores a JSONL replay in batches (what ``campusbot
serve`` does for webhooks), while separate processor processes classify and triage behind
it (``campusbot worker``). The clock stops when the last message is triaged. Latency is
per message, from being stored to being triaged (``processed_at - ingested_at``).

The baseline, measured in the same run on the same messages, is what a first attempt
does: one ORM insert and one commit per message, then classify and triage each message in
its own transaction.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlmodel import Session, col

from bot import migrate
from bot.app import build
from bot.config import Settings, load_settings
from bot.db import Database
from bot.models import Message, MessageState
from channels.base import Batch
from channels.replay import ReplayChannel

N = int(os.environ.get("CAMPUSBOT_BENCH_MESSAGES", "100000"))
BASELINE_N = 2_000
PG_URL = os.environ.get(
    "CAMPUSBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DATA = Path(__file__).resolve().parents[1] / "classifiers" / "data" / "test.jsonl"


def _write_replay(path: Path, n: int) -> None:
    """Realistic texts (the classifier's test split), many people, some public, some DMs."""
    texts = [json.loads(line)["text"] for line in DATA.read_text().splitlines() if line]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with path.open("w") as handle:
        for i in range(n):
            author = i % 4_000
            private = i % 3 != 0
            record = {
                "channel": "twitter",
                "external_id": f"bench-{i}",
                "conversation_id": f"dm-{author}" if private else f"thread-{i % 9_000}",
                "author": {"id": f"u{author}", "handle": f"student{author}"},
                "text": texts[i % len(texts)],
                "private": private,
                "received_at": (start + timedelta(milliseconds=37 * i)).isoformat(),
            }
            handle.write(json.dumps(record) + "\n")


def _settings() -> Settings:
    return load_settings(Path("config.yaml"))


def _database(url: str, schema: str | None) -> Database:
    return Database.from_url(url, search_path=schema)


def _processor(url: str, schema: str | None, done: Any, ready: Any) -> None:
    """A worker: process until the ingester has finished and nothing is left."""
    app = build(_settings(), db=_database(url, schema))
    app.classifier.classify(["warm up"])
    ready.release()
    while True:
        finished = done.is_set()
        report = app.pipeline.process_pending()
        if report.processed == 0:
            if finished:
                return
            time.sleep(0.01)


def _end_to_end(url: str, schema: str | None, replay: Path, processors: int) -> dict[str, Any]:
    db = _database(url, schema)
    migrate.upgrade(db)
    db.dispose()  # no pooled connection may cross the fork
    context = mp.get_context("fork")
    done = context.Event()
    ready = context.Semaphore(0)
    workers = [
        context.Process(target=_processor, args=(url, schema, done, ready))
        for _ in range(processors)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.acquire()
    db = _database(url, schema)
    app = build(_settings(), db=db)
    app.pipeline.ingest(Batch(), source="bench")  # loads the model before the clock starts
    channel = ReplayChannel(replay)
    started = time.perf_counter()
    cursor: str | None = None
    while True:
        batch = channel.fetch(cursor)
        app.pipeline.ingest(batch, source="bench")
        cursor = batch.cursor
        if batch.exhausted:
            break
    ingested = time.perf_counter() - started
    done.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    with db.session() as session:
        latencies = _latencies_ms(session)
        stored = len(latencies)
    db.dispose()
    assert stored == N, f"expected {N} triaged messages, found {stored}"
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "messages": N,
        "processors": processors,
        "messages_per_second": round(N / elapsed),
        "ingest_messages_per_second": round(N / ingested),
        "latency_ms_p50": round(quantiles[49], 1),
        "latency_ms_p99": round(quantiles[98], 1),
        "peak_rss_mb_worst_process": round(
            max(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            )
            / 1024,
            1,
        ),
    }


def _latencies_ms(session: Session) -> list[float]:
    rows = session.execute(
        select(col(Message.ingested_at), col(Message.processed_at)).where(
            col(Message.state) == MessageState.PROCESSED.value
        )
    ).all()
    return [(processed - ingested).total_seconds() * 1000 for ingested, processed in rows]


def _baseline(url: str, schema: str | None, replay: Path) -> float:
    """One commit per message on the way in, one transaction per message on the way through."""
    db = _database(url, schema)
    migrate.upgrade(db)
    app = build(_settings(), db=db)
    app.classifier.classify(["warm up"])
    channel = ReplayChannel(replay, batch_size=1)
    started = time.perf_counter()
    cursor: str | None = None
    for _ in range(BASELINE_N):
        batch = channel.fetch(cursor)
        cursor = batch.cursor
        app.pipeline.ingest(batch, source="bench")
        app.pipeline.process_pending(limit=1)
    rate = BASELINE_N / (time.perf_counter() - started)
    db.dispose()
    return rate


def _pg_schema(name: str) -> str:
    db = Database.from_url(PG_URL)
    with db.engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    db.dispose()
    return name


def _drop_pg_schema(name: str) -> None:
    db = Database.from_url(PG_URL)
    with db.engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    db.dispose()


def run() -> dict[str, Any]:
    results: dict[str, Any] = {"rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        replay = folder / "replay.jsonl"
        _write_replay(replay, N)
        targets: list[tuple[str, str, str | None, int]] = [
            ("sqlite", f"sqlite:///{folder / 'ours.db'}", None, 1),
            ("postgresql", PG_URL, _pg_schema("bench_ours"), 2),
        ]
        for name, url, schema, processors in targets:
            ours = _end_to_end(url, schema, replay, processors)
            if name == "sqlite":
                baseline = _baseline(f"sqlite:///{folder / 'naive.db'}", None, replay)
            else:
                baseline = _baseline(url, _pg_schema("bench_naive"), replay)
                _drop_pg_schema("bench_ours")
                _drop_pg_schema("bench_naive")
            ours["baseline_messages_per_second"] = round(baseline)
            results[name] = ours
            results["rows"].append(
                {
                    "metric": (
                        f"{N:,} replayed msgs ingest+classify+triage /s ({name}, "
                        f"{processors} processor(s); p50 {ours['latency_ms_p50']} ms, "
                        f"p99 {ours['latency_ms_p99']} ms)"
                    ),
                    "ours": ours["messages_per_second"],
                    "baseline": round(baseline),
                    "ratio": round(ours["messages_per_second"] / baseline, 2),
                }
            )
    return results
