"""The trained classifier: a spaCy pipeline plus the safety rules, behind ``Classifier``.

The pipeline (``spacy.blank("en")``) holds two bag-of-words text classifiers — ``tags``
(the six scenarios plus urgent and risk, multi-label) and ``intent`` (exclusive) — and the
``safety_rules`` component. Model scores and rules are combined here, with thresholds
chosen on the dev split for recall first on urgent and risk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc

# Imported for their registrations, which spacy.load needs to rebuild the pipeline.
import classifiers.architecture
import classifiers.rules
import classifiers.tokenizer  # noqa: F401
from classifiers.base import INTENTS, SCENARIOS, Classification, Intent, Scenario
from classifiers.language import detect_language
from classifiers.text import prepare

MODEL_DIR = Path(__file__).parent / "model"
META_FILE = "campusbot.json"
RULE_SCORE = 0.99  # the score reported when a safety rule fired
_LETTER = re.compile(r"[^\W\d_]")
_SCENARIO_ENUMS = tuple(Scenario(s) for s in SCENARIOS)
_INTENT_KEYS = tuple(f"intent:{i}" for i in INTENTS)
_INTENT_BY_KEY = {f"intent:{i}": Intent(i) for i in INTENTS}
_SCORE_KEYS = tuple((f"scenario:{s}", s) for s in SCENARIOS) + tuple(
    (key, key) for key in _INTENT_KEYS
)


@dataclass(frozen=True)
class Thresholds:
    scenarios: dict[str, float]
    urgent: float
    risk: float

    def to_json(self) -> dict[str, Any]:
        return {"scenarios": self.scenarios, "urgent": self.urgent, "risk": self.risk}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Thresholds:
        return cls(dict(data["scenarios"]), float(data["urgent"]), float(data["risk"]))


class SpacyClassifier:
    def __init__(self, nlp: Language, thresholds: Thresholds, version: str) -> None:
        self.nlp = nlp
        self.thresholds = thresholds
        self.name = f"spacy-{version}"
        self._zero = {f"scenario:{s}": 0.0 for s in SCENARIOS}
        self._zero |= {f"intent:{i}": 0.0 for i in INTENTS} | {"urgent": 0.0, "risk": 0.0}

    @classmethod
    def load(cls, path: Path = MODEL_DIR) -> SpacyClassifier:
        meta = json.loads((path / META_FILE).read_text())
        nlp = spacy.load(path)
        return cls(nlp, Thresholds.from_json(meta["thresholds"]), meta["version"])

    def save(self, path: Path, *, extra: dict[str, Any] | None = None) -> None:
        self.nlp.to_disk(path)
        meta = {
            "version": self.name.removeprefix("spacy-"),
            "thresholds": self.thresholds.to_json(),
            **(extra or {}),
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    def warm_up(self) -> None:
        """Build what is otherwise built on first use (the language identifier)."""
        from classifiers.language import warm_up

        warm_up()

    def docs(self, texts: Sequence[str], *, batch_size: int = 1000) -> Iterator[Doc]:
        return self.nlp.pipe((prepare(t) for t in texts), batch_size=batch_size)

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        return [self.decide(doc, text) for doc, text in zip(self.docs(texts), texts, strict=True)]

    def decide(self, doc: Doc, original: str) -> Classification:
        if not _LETTER.search(original):
            # Nothing to read (empty, emoji, a photo alone): no tags, and a person looks.
            return Classification(language="und", model=self.name, scores=self._zero)
        cats = doc.cats
        t = self.thresholds
        scenarios = tuple(s for s in _SCENARIO_ENUMS if cats[s.value] >= t.scenarios[s.value])
        risk_p = max(cats["risk"], RULE_SCORE if doc._.risk_rule else 0.0)
        urgent_p = max(cats["urgent"], RULE_SCORE if doc._.urgent_rule else 0.0)
        risk = risk_p >= t.risk
        urgent = risk or urgent_p >= t.urgent
        intent = max(_INTENT_KEYS, key=cats.__getitem__)
        scores = {key: round(cats[label], 4) for key, label in _SCORE_KEYS}
        scores["urgent"] = round(max(urgent_p, risk_p if risk else 0.0), 4)
        scores["risk"] = round(risk_p, 4)
        # Built without re-validation: every value here comes from the code above.
        return Classification.model_construct(
            scenarios=scenarios,
            urgent=urgent,
            risk=risk,
            intent=_INTENT_BY_KEY[intent],
            scores=scores,
            language=detect_language(original),
            model=self.name,
        )
