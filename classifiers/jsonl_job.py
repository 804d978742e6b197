"""`campusbot classify`: stream JSONL in, the same lines with their tags out.

Input is read in chunks of lines and never loaded whole; a broken line is reported with its
number and skipped, and every other line still comes out, in input order. With more than
one worker the chunks are classified in forked processes (the loaded model is shared by
fork), a bounded number at a time, and written back in order.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TextIO

from classifiers.base import Classification, Classifier

CHUNK = 2000
_worker_classifier: Classifier | None = None


@dataclass
class JobReport:
    read: int = 0
    written: int = 0
    broken: int = 0


@dataclass
class ChunkResult:
    output: str = ""
    written: int = 0
    read: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def tagged(line: dict[str, Any], result: Classification) -> dict[str, Any]:
    return {
        **line,
        "scenarios": [s.value for s in result.scenarios],
        "urgent": result.urgent,
        "risk": result.risk,
        "intent": result.intent.value,
        "scores": result.scores,
    }


def classify_chunk(classifier: Classifier, first_line: int, lines: list[str]) -> ChunkResult:
    """Parse, classify and serialise one chunk; pure, so it can run in any process."""
    result = ChunkResult()
    items: list[dict[str, Any]] = []
    for offset, raw in enumerate(lines):
        if not raw.strip():
            continue
        result.read += 1
        number = first_line + offset
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            result.errors.append((number, f"malformed JSON ({exc.msg} at column {exc.colno})"))
            continue
        except RecursionError:
            result.errors.append((number, "JSON nested too deeply"))
            continue
        except ValueError as exc:  # e.g. an integer too long to convert
            result.errors.append((number, f"unreadable JSON value ({exc})"))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            result.errors.append((number, 'expected an object with a "text" string'))
            continue
        items.append(data)
    if items:
        tags = classifier.classify([item["text"] for item in items])
        result.output = "".join(
            json.dumps(tagged(item, tag), ensure_ascii=False) + "\n"
            for item, tag in zip(items, tags, strict=True)
        )
        result.written = len(items)
    return result


def _chunks(source: TextIO) -> Iterator[tuple[int, list[str]]]:
    line = 1
    while True:
        lines = list(islice(source, CHUNK))
        if not lines:
            return
        yield line, lines
        line += len(lines)


def _in_worker(first_line: int, lines: list[str]) -> ChunkResult:
    assert _worker_classifier is not None
    return classify_chunk(_worker_classifier, first_line, lines)


def classify_stream(
    classifier: Classifier,
    source: TextIO,
    sink: TextIO,
    *,
    on_error: Callable[[int, str], None],
    on_progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> JobReport:
    report = JobReport()

    def emit(chunk: ChunkResult) -> None:
        sink.write(chunk.output)
        report.read += chunk.read
        report.written += chunk.written
        report.broken += len(chunk.errors)
        for number, reason in chunk.errors:
            on_error(number, reason)
        if on_progress is not None:
            on_progress(chunk.read)

    count = workers or os.cpu_count() or 1
    if count <= 1:
        for first, lines in _chunks(source):
            emit(classify_chunk(classifier, first, lines))
        return report

    global _worker_classifier
    _worker_classifier = classifier  # inherited by the forked workers
    warm = getattr(classifier, "warm_up", None)
    if callable(warm):
        warm()  # load lazily-built parts once, before fork, not once per worker
    context = multiprocessing.get_context("fork")
    in_flight: deque[Future[ChunkResult]] = deque()
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        for first, lines in _chunks(source):
            in_flight.append(pool.submit(_in_worker, first, lines))
            if len(in_flight) >= 2 * count:  # bounded: the input is never read far ahead
                emit(in_flight.popleft().result())
        while in_flight:
            emit(in_flight.popleft().result())
    return report
