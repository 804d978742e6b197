"""Training: deterministic from the committed data, so the shipped model can be rebuilt.

1. Train on the train split and choose the thresholds on dev: best F1 per scenario, and
   for urgent and risk the highest threshold at which model and rules together still
   catch (nearly) every dev example - recall first - less a safety margin.
2. Retrain on train + dev with the same seed and epochs, and keep those thresholds.
The test split is never seen.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example as SpacyExample
from spacy.util import fix_random_seed  # type: ignore[attr-defined]
from thinc.api import Adam

import classifiers.architecture  # noqa: F401  (registers the model architecture)
from classifiers.base import INTENTS, SCENARIOS
from classifiers.dataset import DATA_DIR, Example, load_split
from classifiers.metrics import Report, evaluate
from classifiers.model import MODEL_DIR, SpacyClassifier, Thresholds
from classifiers.text import prepare
from classifiers.tokenizer import WordTokenizer  # noqa: F401  (registers the tokenizer)

SEED = 20171121  # the first day of the Preston pilot
NGRAMS = 1  # scenarios: unigrams (bigrams dilute the unit-length features)
INTENT_NGRAMS = 1
HASH_LENGTH = 2**16
TOKENIZER = "campusbot.WordTokenizer.v1"
ARCHITECTURE = "campusbot.NormalisedBOW.v1"
TAG_LABELS = (*SCENARIOS, "urgent", "risk")
URGENT_RECALL = 0.99  # dev recall the urgent threshold must reach, with the rules
RISK_RECALL = 1.0
THRESHOLD_MARGIN = 0.8  # unseen wording scores lower than dev: keep some room
EPOCHS = 8
LEARN_RATE = 0.01  # unit-length features need a larger step than raw counts
BATCH_SIZE = 32


def _bow(exclusive: bool, ngrams: int) -> dict[str, object]:
    return {
        "@architectures": ARCHITECTURE,
        "exclusive_classes": exclusive,
        "ngram_size": ngrams,
        "length": HASH_LENGTH,
    }


def build_pipeline() -> Language:
    nlp = spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER}}})
    tags = nlp.add_pipe("textcat_multilabel", name="tags", config={"model": _bow(False, NGRAMS)})
    for label in TAG_LABELS:
        tags.add_label(label)  # type: ignore[attr-defined]
    intent = nlp.add_pipe("textcat", name="intent", config={"model": _bow(True, INTENT_NGRAMS)})
    for label in INTENTS:
        intent.add_label(f"intent:{label}")  # type: ignore[attr-defined]
    nlp.add_pipe("safety_rules")
    return nlp


def _spacy_examples(
    nlp: Language, examples: Sequence[Example]
) -> tuple[list[SpacyExample], list[SpacyExample]]:
    """Examples for the tags and for the intent component (each validates its own labels)."""
    tags, intents = [], []
    for example in examples:
        doc = nlp.make_doc(prepare(example.text))
        cats = {s: float(s in example.scenarios) for s in SCENARIOS}
        cats["urgent"] = float(example.urgent or example.risk)
        cats["risk"] = float(example.risk)
        tags.append(SpacyExample.from_dict(doc, {"cats": cats}))
        intent = {f"intent:{i}": float(i == example.intent) for i in INTENTS}
        intents.append(SpacyExample.from_dict(doc, {"cats": intent}))
    return tags, intents


def fit(nlp: Language, examples: Sequence[Example], epochs: int = EPOCHS) -> None:
    """Train in place, deterministically: fixed seed, fixed order of shuffles, fixed epochs."""
    fix_random_seed(SEED)
    rng = random.Random(SEED)
    tags, intents = _spacy_examples(nlp, examples)
    nlp.get_pipe("tags").initialize(lambda: tags, nlp=nlp)  # type: ignore[attr-defined]
    nlp.get_pipe("intent").initialize(lambda: intents, nlp=nlp)  # type: ignore[attr-defined]
    optimizer = Adam(learn_rate=LEARN_RATE)
    order = list(range(len(tags)))
    for _ in range(epochs):
        rng.shuffle(order)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            nlp.update(
                [tags[i] for i in batch],
                sgd=optimizer,
                drop=0.2,
                exclude=["intent", "safety_rules"],
            )
            nlp.update(
                [intents[i] for i in batch],
                sgd=optimizer,
                drop=0.2,
                exclude=["tags", "safety_rules"],
            )


def choose_thresholds(nlp: Language, dev: Sequence[Example]) -> Thresholds:
    docs = list(nlp.pipe(prepare(e.text) for e in dev))
    scenario_t: dict[str, float] = {}
    grid = [round(0.05 * i, 2) for i in range(2, 19)]
    for label in SCENARIOS:
        truth = [label in e.scenarios for e in dev]
        probs = [d.cats[label] for d in docs]
        scenario_t[label] = max(
            grid, key=lambda t: (_f1(truth, [p >= t for p in probs]), -abs(t - 0.5))
        )
    return Thresholds(
        scenario_t,
        urgent=_recall_first(docs, dev, "urgent", URGENT_RECALL),
        risk=_recall_first(docs, dev, "risk", RISK_RECALL),
    )


def _recall_first(docs: list[Doc], dev: Sequence[Example], flag: str, target: float) -> float:
    """The highest threshold at which rules + model still reach ``target`` recall on dev."""
    truth = [e.risk if flag == "risk" else (e.urgent or e.risk) for e in dev]
    fired = [
        doc._.risk_rule is not None or (flag == "urgent" and doc._.urgent_rule is not None)
        for doc in docs
    ]
    positives = sum(truth)
    for step in range(90, 0, -1):
        threshold = step / 100
        caught = sum(
            t and (f or doc.cats[flag] >= threshold)
            for t, f, doc in zip(truth, fired, docs, strict=True)
        )
        if positives == 0 or caught / positives >= target:
            return round(threshold * THRESHOLD_MARGIN, 4)
    return 0.01


def _f1(truth: list[bool], predicted: list[bool]) -> float:
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    fp = sum(p and not t for t, p in zip(truth, predicted, strict=True))
    fn = sum(t and not p for t, p in zip(truth, predicted, strict=True))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


@dataclass(frozen=True)
class TrainResult:
    classifier: SpacyClassifier
    epochs: int
    dev_report: Report


def data_fingerprint(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for example in examples:
        digest.update(repr(example).encode())
    return digest.hexdigest()[:16]


def train(data_dir: Path = DATA_DIR) -> TrainResult:
    train_set, dev_set = load_split("train", data_dir), load_split("dev", data_dir)
    probe = build_pipeline()
    fit(probe, train_set)
    thresholds = choose_thresholds(probe, dev_set)
    dev_report = evaluate(SpacyClassifier(probe, thresholds, "dev"), dev_set)
    final = build_pipeline()
    fit(final, [*train_set, *dev_set])
    version = data_fingerprint([*train_set, *dev_set])
    return TrainResult(SpacyClassifier(final, thresholds, version), EPOCHS, dev_report)


def train_and_save(out: Path = MODEL_DIR, data_dir: Path = DATA_DIR) -> TrainResult:
    result = train(data_dir)
    result.classifier.save(out, extra={"epochs": result.epochs, "seed": SEED})
    return result
