"""`campusbot classify`: stream JSONL in, the same lines with their tags out.

Input is read and written in batches, never loaded whole; a broken line is reported with
its number and skipped, and every other line still comes out, in order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from classifiers.base import Classification, Classifier

BATCH = 2000


@dataclass
class JobReport:
    read: int = 0
    written: int = 0
    broken: int = 0


def tagged(line: dict[str, Any], result: Classification) -> dict[str, Any]:
    return {
        **line,
        "scenarios": [s.value for s in result.scenarios],
        "urgent": result.urgent,
        "risk": result.risk,
        "intent": result.intent.value,
        "scores": result.scores,
    }


def _parsed(
    lines: Iterable[str], report: JobReport, on_error: Callable[[int, str], None]
) -> Iterator[dict[str, Any]]:
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        report.read += 1
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            report.broken += 1
            on_error(number, f"malformed JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            report.broken += 1
            on_error(number, 'expected an object with a "text" string')
            continue
        yield data


def classify_stream(
    classifier: Classifier,
    source: TextIO,
    sink: TextIO,
    *,
    on_error: Callable[[int, str], None],
    on_progress: Callable[[int], None] | None = None,
) -> JobReport:
    report = JobReport()
    batch: list[dict[str, Any]] = []
    for item in _parsed(source, report, on_error):
        batch.append(item)
        if len(batch) >= BATCH:
            _flush(classifier, batch, sink, report, on_progress)
    _flush(classifier, batch, sink, report, on_progress)
    return report


def _flush(
    classifier: Classifier,
    batch: list[dict[str, Any]],
    sink: TextIO,
    report: JobReport,
    on_progress: Callable[[int], None] | None,
) -> None:
    if not batch:
        return
    results = classifier.classify([item["text"] for item in batch])
    sink.write(
        "".join(
            json.dumps(tagged(item, result), ensure_ascii=False) + "\n"
            for item, result in zip(batch, results, strict=True)
        )
    )
    report.written += len(batch)
    if on_progress is not None:
        on_progress(len(batch))
    batch.clear()
