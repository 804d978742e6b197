"""Group commit for webhook bodies: many concurrent requests, one transaction.

A webhook may answer 200 only once its body is stored. Storing each body in its own
transaction from the server's thread pool made every request a writer: on SQLite they
queued on the database's single write lock, whose busy handler sleeps, so a burst of a few
hundred requests a second stalled for seconds. Here each request thread parses its body,
hands the batch to one writer thread and waits; the writer stores whatever has gathered
in one transaction per channel and then releases every waiting request together. A failed
transaction fails every request in it (the platforms send them again); nothing is
acknowledged that is not stored.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from bot.pipeline import IngestReport
from channels.base import Batch

log = logging.getLogger(__name__)

Ingest = Callable[[Batch, str], IngestReport]
MAX_GROUP = 500  # bodies per transaction, at most


@dataclass(frozen=True)
class _Pending:
    channel: str
    batch: Batch
    done: Future[None]
    context: contextvars.Context  # the request's: its id for logs, its app's metrics


class GroupCommit:
    def __init__(self, ingest: Ingest, *, max_group: int = MAX_GROUP) -> None:
        self._ingest = ingest
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def store(self, channel: str, batch: Batch, *, timeout: float = 30.0) -> None:
        """Block until ``batch`` is committed; raises what the transaction raised."""
        self._ensure_started()
        done: Future[None] = Future()
        self._queue.put(_Pending(channel, batch, done, contextvars.copy_context()))
        done.result(timeout=timeout)

    def close(self) -> None:
        """Finish what is queued, then stop the writer."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="webhook-group-commit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stopping = False
            while len(group) < self._max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
            self._commit(group)
            if stopping:
                return

    def _commit(self, group: list[_Pending]) -> None:
        by_channel: dict[str, list[_Pending]] = {}
        for pending in group:
            by_channel.setdefault(pending.channel, []).append(pending)
        for channel, items in by_channel.items():
            merged = Batch(
                messages=[m for p in items for m in p.batch.messages],
                failures=[f for p in items for f in p.batch.failures],
            )
            try:  # in the first request's context: the group's log lines carry its id
                items[0].context.run(self._ingest, merged, channel)
            except Exception as exc:  # every waiting request learns it was not stored
                log.exception("webhook group of %d bodies not stored", len(items))
                for pending in items:
                    pending.done.set_exception(exc)
            else:
                for pending in items:
                    pending.done.set_result(None)
