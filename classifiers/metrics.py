"""Evaluation: the figures the floors are set in, computed one way for every model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from classifiers.base import INTENTS, SCENARIOS, Classification, Classifier
from classifiers.dataset import Example


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float
    support: int


def prf(truth: Sequence[bool], predicted: Sequence[bool]) -> PRF:
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    fp = sum(p and not t for t, p in zip(truth, predicted, strict=True))
    fn = sum(t and not p for t, p in zip(truth, predicted, strict=True))
    precision = tp / (tp + fp) if tp + fp else (1.0 if tp + fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(round(precision, 4), round(recall, 4), round(f1, 4), tp + fn)


@dataclass(frozen=True)
class Report:
    examples: int
    scenarios: dict[str, PRF]
    scenario_macro_f1: float
    urgent: PRF
    risk: PRF
    intents: dict[str, PRF]
    intent_accuracy: float
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def score(examples: Sequence[Example], predictions: Sequence[Classification]) -> Report:
    scenarios = {
        label: prf(
            [label in e.scenarios for e in examples], [label in p.scenarios for p in predictions]
        )
        for label in SCENARIOS
    }
    intents = {
        label: prf([e.intent == label for e in examples], [p.intent == label for p in predictions])
        for label in INTENTS
    }
    confusion = {t: dict.fromkeys(INTENTS, 0) for t in INTENTS}
    for example, prediction in zip(examples, predictions, strict=True):
        confusion[example.intent][prediction.intent.value] += 1
    correct = sum(e.intent == p.intent for e, p in zip(examples, predictions, strict=True))
    return Report(
        examples=len(examples),
        scenarios=scenarios,
        scenario_macro_f1=round(sum(s.f1 for s in scenarios.values()) / len(scenarios), 4),
        urgent=prf([e.urgent or e.risk for e in examples], [p.urgent for p in predictions]),
        risk=prf([e.risk for e in examples], [p.risk for p in predictions]),
        intents=intents,
        intent_accuracy=round(correct / len(examples), 4) if examples else 0.0,
        confusion=confusion,
    )


def evaluate(classifier: Classifier, examples: Sequence[Example]) -> Report:
    return score(examples, classifier.classify([e.text for e in examples]))
