"""Ingest -> classify -> triage on SQLite, against a naive one-commit-per-message baseline."""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot import migrate
from bot.app import build
from bot.config import load_settings
from bot.db import Database
from bot.messages import Author, InboundMessage
from bot.models import Message
from channels.base import Batch

N = 10_000
TEXTS = [
    "someone nicked my bike from outside the library",
    "there's a fight outside the SU right now",
    "loud party in the flat above again, 3am",
    "what time is the drop-in at the student centre",
    "my mate got spiked at the club and can't stand up",
    "thanks for the advice post",
]


def _messages(n: int) -> list[InboundMessage]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return [
        InboundMessage(
            channel="twitter",
            external_id=str(i),
            conversation_id=f"c{i % 5000}",
            author=Author(id=f"u{i % 3000}"),
            text=f"{TEXTS[i % len(TEXTS)]} #{i}",
            private=True,
            received_at=start + timedelta(seconds=i),
        )
        for i in range(n)
    ]


def _fresh(folder: Path, name: str) -> Database:
    db = Database.from_url(f"sqlite:///{folder / name}")
    migrate.upgrade(db)
    return db


def _ours(folder: Path, messages: list[InboundMessage]) -> tuple[float, float]:
    settings = load_settings(Path("config.yaml"))
    app = build(settings, db=_fresh(folder, "ours.db"))
    tracemalloc.start()
    started = time.perf_counter()
    for i in range(0, len(messages), 500):
        app.pipeline.ingest(Batch(messages=messages[i : i + 500]), source="bench")
    app.pipeline.process_pending()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return len(messages) / elapsed, peak / 2**20


def _naive(folder: Path, messages: list[InboundMessage]) -> float:
    """What a first attempt does: one ORM insert and one commit per message, no batching."""
    db = _fresh(folder, "naive.db")
    started = time.perf_counter()
    for m in messages:
        with db.session() as session:
            session.add(
                Message(
                    channel=m.channel,
                    external_id=m.external_id,
                    conversation_id=m.conversation_id,
                    author_id=m.author.id,
                    text=m.text,
                    private=m.private,
                    received_at=m.received_at,
                    ingested_at=m.received_at,
                    raw={},
                )
            )
    return len(messages) / (time.perf_counter() - started)


def run() -> dict[str, Any]:
    messages = _messages(N)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours_rate, peak_mb = _ours(folder, messages)
        naive_rate = _naive(folder, messages)
    return {
        "messages": N,
        "ours_messages_per_second": round(ours_rate),
        "naive_ingest_only_messages_per_second": round(naive_rate),
        "peak_traced_memory_mb": round(peak_mb, 1),
        "rows": [
            {
                "metric": f"{N} messages ingested+classified+triaged /s (SQLite)",
                "ours": round(ours_rate),
                "baseline": round(naive_rate),
                "ratio": round(ours_rate / naive_rate, 2),
            }
        ],
    }
