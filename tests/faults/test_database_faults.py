"""The database crashing or a worker being killed mid-batch: nothing received is lost or doubled.

Senders behave as the platforms do: a webhook that is not answered 200 is sent again, so
a batch whose transaction failed is offered again until it is stored. Afterwards every
message must be present exactly once, processed once, in exactly one case, with at most
one automatic acknowledgement, and the audit chain must still verify.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from bot import migrate
from bot.app import App, build
from bot.clock import FixedClock
from bot.config import Settings
from bot.crud import audit
from bot.db import Database
from bot.messages import InboundMessage
from bot.models import AuditEntry, Case, Message, MessageState, OutboundMessage
from channels.base import Batch
from classifiers.base import Classification
from classifiers.keywords import KeywordClassifier
from tests.conftest import NOW, PG_URL, message_line
from tests.faults.private_postgres import PrivateCluster

MESSAGES = 1_500
BATCH = 50
TEXTS = [
    "someone nicked my bike outside the library",
    "there's a fight outside the SU right now",
    "what time is the drop-in",
    "my mate got spiked and can't stand up",
]


def _batches() -> list[Batch]:
    messages = [
        InboundMessage.model_validate(
            message_line(
                str(i),
                TEXTS[i % len(TEXTS)],
                conversation_id=f"conv-{i % 400}",
                author={"id": f"user-{i % 400}"},
            )
        )
        for i in range(MESSAGES)
    ]
    return [Batch(messages=messages[i : i + BATCH]) for i in range(0, MESSAGES, BATCH)]


def _until_stored(app: App, batch: Batch, retries: list[int]) -> None:
    """What a platform does with an unanswered webhook: send it again, a moment later."""
    while True:
        try:
            app.pipeline.ingest(batch, source="twitter")
            return
        except DBAPIError:
            retries.append(1)
            time.sleep(0.2)


def _process_until_idle(app: App, sender_done: threading.Event, retries: list[int]) -> None:
    while True:
        finished = sender_done.is_set()
        try:
            if app.pipeline.process_pending(limit=100).processed == 0 and finished:
                return
        except DBAPIError:
            retries.append(1)
            time.sleep(0.2)


def _assert_each_message_once(db: Database) -> None:
    with db.session() as session:
        rows = session.execute(
            select(Message.external_id, Message.state, Message.case_id)  # type: ignore[call-overload]
        ).all()
        acks_per_message = session.execute(
            select(OutboundMessage.in_reply_to_message_id, func.count()).group_by(  # type: ignore[call-overload]
                OutboundMessage.in_reply_to_message_id
            )
        ).all()
        case_ids = set(session.execute(select(Case.id)).scalars())  # type: ignore[call-overload]
        opened = session.execute(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "case.opened")  # type: ignore[arg-type]
        ).scalar_one()
        chain = audit.verify(session)
    assert sorted(int(r.external_id) for r in rows) == list(range(MESSAGES))
    assert {r.state for r in rows} == {MessageState.PROCESSED.value}
    assert {r.case_id for r in rows} == case_ids  # every message in a case, no orphan cases
    assert opened == len(case_ids)  # each case opened once
    assert all(count == 1 for _, count in acks_per_message)
    assert chain.ok


@pytest.mark.slow
def test_postgres_crash_and_restart_during_ingest_and_processing(
    private_postgres: PrivateCluster,
    settings: Settings,
) -> None:
    db = Database.from_url(private_postgres.url)
    migrate.upgrade(db)
    app = build(settings, clock=FixedClock(NOW), db=db)
    sender_retries: list[int] = []
    processor_retries: list[int] = []
    sender_done = threading.Event()
    batches = _batches()

    def send() -> None:
        for batch in batches:
            _until_stored(app, batch, sender_retries)
            time.sleep(0.01)
        sender_done.set()

    sender = threading.Thread(target=send)
    processor = threading.Thread(
        target=_process_until_idle, args=(app, sender_done, processor_retries)
    )
    sender.start()
    processor.start()
    time.sleep(0.4)
    private_postgres.restart("immediate")  # a crash: no checkpoint, WAL recovery
    time.sleep(0.4)
    private_postgres.restart("fast")  # and an orderly restart
    sender.join(120)
    processor.join(120)
    assert not sender.is_alive() and not processor.is_alive()
    assert sender_retries or processor_retries, "the restarts happened after the work was done"
    _assert_each_message_once(db)
    db.dispose()


class _SlowClassifier(KeywordClassifier):
    """Slow enough that a kill lands in the middle of a batch."""

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        time.sleep(0.5)
        return super().classify(texts)


def _doomed_worker(search_path: str, settings: Settings) -> None:
    db = Database.from_url(PG_URL, search_path=search_path)
    app = build(settings, clock=FixedClock(NOW), db=db)
    app.__dict__["classifier"] = _SlowClassifier()  # replaces the cached property
    while True:
        app.pipeline.process_pending(limit=200)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_worker_killed_mid_batch_leaves_its_messages_for_the_next(
    pg_schema: str, settings: Settings
) -> None:
    db = Database.from_url(PG_URL, search_path=pg_schema)
    migrate.upgrade(db)
    app = build(settings, clock=FixedClock(NOW), db=db)
    for batch in _batches():
        app.pipeline.ingest(batch, source="twitter")
    db.dispose()  # no pooled connection may cross the fork
    context = multiprocessing.get_context("fork")
    worker = context.Process(target=_doomed_worker, args=(pg_schema, settings))
    worker.start()
    time.sleep(1.5)  # some batches done, one in the middle of classification
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    worker.join(30)
    assert worker.exitcode == -signal.SIGKILL
    with db.session() as session:
        done = session.execute(
            select(func.count()).select_from(Message).where(Message.state == "processed")  # type: ignore[arg-type]
        ).scalar_one()
    assert 0 < done < MESSAGES  # killed part way through, batches of at most 200 each
    assert done % 200 == 0  # only whole batches committed
    app.pipeline.process_pending()  # another worker picks up the rest
    _assert_each_message_once(db)
    db.dispose()
