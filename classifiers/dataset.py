"""The labelled data: loading, validating, and the fixed train/dev/test split.

The split is decided by a hash of each message's normalised text, so it never depends on
file order, and adding new examples never moves an old one to another split. The three
split files are committed; `campusbot classifier split` rebuilds them from data/raw.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifiers.base import INTENTS, SCENARIOS

DATA_DIR = Path(__file__).parent / "data"
RAW_DIR = DATA_DIR / "raw"
SPLITS = ("train", "dev", "test")
# Of 100 hash buckets: 0-69 train, 70-84 dev, 85-99 test.
_BUCKETS = {"train": range(0, 70), "dev": range(70, 85), "test": range(85, 100)}


@dataclass(frozen=True)
class Example:
    text: str
    scenarios: tuple[str, ...]
    urgent: bool
    risk: bool
    intent: str

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "scenarios": list(self.scenarios),
            "urgent": self.urgent,
            "risk": self.risk,
            "intent": self.intent,
        }


def parse_example(data: Any, where: str = "") -> Example:
    """Validate one labelled object; the error says where and what is wrong."""
    prefix = f"{where}: " if where else ""
    if not isinstance(data, dict):
        raise ValueError(f"{prefix}expected a JSON object")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{prefix}text must be a non-empty string")
    scenarios = data.get("scenarios", [])
    if not isinstance(scenarios, list) or any(s not in SCENARIOS for s in scenarios):
        raise ValueError(f"{prefix}scenarios must be a list drawn from {', '.join(SCENARIOS)}")
    urgent, risk = data.get("urgent"), data.get("risk")
    if not isinstance(urgent, bool) or not isinstance(risk, bool):
        raise ValueError(f"{prefix}urgent and risk must be true or false")
    intent = data.get("intent")
    if intent not in INTENTS:
        raise ValueError(f"{prefix}intent must be one of {', '.join(INTENTS)}")
    return Example(text, tuple(sorted(set(scenarios))), urgent, risk, str(intent))


def read_jsonl(path: Path) -> Iterator[Example]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                yield parse_example(json.loads(line), f"{path.name}:{number}")


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def split_of(text: str) -> str:
    bucket = int(hashlib.sha256(_normalised(text).encode()).hexdigest(), 16) % 100
    return next(name for name, span in _BUCKETS.items() if bucket in span)


def load_raw(raw_dir: Path = RAW_DIR) -> list[Example]:
    """Every raw file, de-duplicated on normalised text (first occurrence wins)."""
    seen: set[str] = set()
    examples: list[Example] = []
    for path in sorted(raw_dir.glob("*.jsonl")):
        for example in read_jsonl(path):
            key = _normalised(example.text)
            if key not in seen:
                seen.add(key)
                examples.append(example)
    return examples


def write_splits(examples: Iterable[Example], data_dir: Path = DATA_DIR) -> dict[str, int]:
    buckets: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for example in examples:
        buckets[split_of(example.text)].append(example)
    for name, items in buckets.items():
        with (data_dir / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for example in items:
                handle.write(json.dumps(example.as_json(), ensure_ascii=False) + "\n")
    return {name: len(items) for name, items in buckets.items()}


def load_split(name: str, data_dir: Path = DATA_DIR) -> list[Example]:
    return list(read_jsonl(data_dir / f"{name}.jsonl"))
