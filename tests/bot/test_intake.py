"""Group commit: concurrent webhook bodies are stored together, each exactly once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.intake import GroupCommit
from bot.messages import InboundMessage
from bot.models import DeadLetter, Message
from bot.pipeline import IngestReport
from channels.base import Batch, Undeliverable
from tests.conftest import message_line


def _batch(i: int) -> Batch:
    return Batch(messages=[InboundMessage.model_validate(message_line(str(i), f"bike nicked {i}"))])


def _count(app: App, model: type[Message] | type[DeadLetter]) -> int:
    with app.db.session() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_concurrent_bodies_are_stored_once_in_fewer_transactions(bot_app: App) -> None:
    transactions: list[int] = []
    gate = threading.Event()

    def ingest(batch: Batch, source: str) -> IngestReport:
        gate.wait(5)  # hold the first transaction so the others gather behind it
        transactions.append(len(batch.messages) + len(batch.failures))
        return bot_app.pipeline.ingest(batch, source=source)

    writer = GroupCommit(ingest)
    bodies = [_batch(i) for i in range(60)] + [_batch(7)]  # one duplicate delivery
    bodies.append(Batch(failures=[Undeliverable(b"{not json", "malformed JSON", "webhook")]))
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        futures = [pool.submit(writer.store, "twitter", body) for body in bodies]
        threading.Timer(0.3, gate.set).start()
        for future in futures:
            future.result(timeout=30)  # every request returns only after its commit
    writer.close()

    assert _count(bot_app, Message) == 60
    assert _count(bot_app, DeadLetter) == 1
    assert sum(transactions) == len(bodies)
    assert len(transactions) < len(bodies) / 4


def test_a_failed_transaction_fails_every_request_in_it_and_the_next_succeeds(
    bot_app: App,
) -> None:
    calls = 0

    def flaky(batch: Batch, source: str) -> IngestReport:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database went away")
        return bot_app.pipeline.ingest(batch, source=source)

    writer = GroupCommit(flaky)
    with pytest.raises(ConnectionError, match="database went away"):
        writer.store("twitter", _batch(1))
    writer.store("twitter", _batch(1))  # the platform's retry
    writer.close()
    assert _count(bot_app, Message) == 1


def test_close_finishes_what_is_queued(bot_app: App) -> None:
    writer = GroupCommit(lambda batch, source: bot_app.pipeline.ingest(batch, source=source))
    with ThreadPoolExecutor(max_workers=10) as pool:
        futures = [pool.submit(writer.store, "twitter", _batch(i)) for i in range(10)]
        for future in futures:
            future.result(timeout=30)
    writer.close()
    writer.close()  # idempotent
    assert _count(bot_app, Message) == 10
