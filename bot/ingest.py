"""Feeding files and dead letters through the pipeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.app import App, PayloadParser
from bot.crud import deadletters
from bot.models import DeadLetter
from bot.pipeline import IngestReport, ProcessReport
from channels.base import Batch
from channels.replay import ReplayChannel


def ingest_file(app: App, path: Path) -> tuple[IngestReport, ProcessReport]:
    """Stream a JSONL file in batches; each batch is stored before the next is read."""
    channel = ReplayChannel(path, max_text_chars=app.settings.max_text_chars)
    source = ReplayChannel.name
    ingested = IngestReport()
    cursor: str | None = None
    while True:
        batch = channel.fetch(cursor)
        ingested.add(app.pipeline.ingest(batch, source=source))
        cursor = batch.cursor
        if batch.exhausted:
            break
    return ingested, app.pipeline.process_pending()


@dataclass
class RetryReport:
    resolved: int = 0
    still_failing: int = 0
    unknown_source: int = 0


def retry_dead_letters(app: App, ids: Sequence[int] | None = None) -> RetryReport:
    """Parse each pending letter again with the parser of the channel that refused it."""
    report = RetryReport()
    parsers: Mapping[str, PayloadParser] = app.parsers()
    with app.db.session() as session:
        letters = [
            letter
            for letter in deadletters.list_letters(session, limit=10_000)
            if ids is None or letter.id in ids
        ]
    for letter in letters:
        parser = parsers.get(letter.source)
        if parser is None:
            report.unknown_source += 1
            continue
        batch = parser(letter.raw)
        if batch.failures:
            _still_failing(app, letter, batch.failures[0].reason)
            report.still_failing += 1
            continue
        app.pipeline.ingest(Batch(messages=batch.messages), source=letter.source)
        with app.db.session() as session:
            fresh = session.get(DeadLetter, letter.id)
            if fresh is not None:
                deadletters.mark_resolved(session, fresh, at=app.clock.now())
        report.resolved += 1
    app.pipeline.process_pending()
    return report


def _still_failing(app: App, letter: DeadLetter, reason: str) -> None:
    with app.db.session() as session:
        fresh = session.get(DeadLetter, letter.id)
        if fresh is not None:
            deadletters.mark_failed_again(session, fresh, reason=reason)
