"""The baseline the classifier is measured against: scikit-learn TF-IDF + logistic regression.

Trained on the same train + dev data as the shipped model, on plain normalised text (no
lexicon, no rules), with the usual 0.5 decision threshold. `classify` is the same JSONL job
as `campusbot classify`, so the two can be timed as whole processes.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from classifiers.base import INTENTS, SCENARIOS, Classification, Intent, Scenario
from classifiers.dataset import Example, load_split
from classifiers.text import normalise

BATCH = 2000


class BaselineClassifier:
    name = "baseline-tfidf-lr"

    def __init__(self, vectorizer: TfidfVectorizer, models: dict[str, LogisticRegression]) -> None:
        self.vectorizer = vectorizer
        self.models = models

    @classmethod
    def fit(cls, examples: Sequence[Example]) -> BaselineClassifier:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        X = vectorizer.fit_transform([normalise(e.text) for e in examples])
        targets: dict[str, list[Any]] = {s: [s in e.scenarios for e in examples] for s in SCENARIOS}
        targets["urgent"] = [e.urgent or e.risk for e in examples]
        targets["risk"] = [e.risk for e in examples]
        targets["intent"] = [e.intent for e in examples]
        models = {
            name: LogisticRegression(
                C=10, max_iter=3000, class_weight=None if name == "intent" else "balanced"
            ).fit(X, y)
            for name, y in targets.items()
        }
        return cls(vectorizer, models)

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        X = self.vectorizer.transform([normalise(t) for t in texts])
        probs = {n: m.predict_proba(X) for n, m in self.models.items()}
        intent_classes = list(self.models["intent"].classes_)
        out = []
        for row in range(len(texts)):
            scores = {f"scenario:{s}": float(probs[s][row, 1]) for s in SCENARIOS}
            scores |= {
                f"intent:{i}": float(probs["intent"][row, intent_classes.index(i)]) for i in INTENTS
            }
            scores |= {
                "urgent": float(probs["urgent"][row, 1]),
                "risk": float(probs["risk"][row, 1]),
            }
            risk = scores["risk"] >= 0.5
            out.append(
                Classification(
                    scenarios=tuple(
                        Scenario(s) for s in SCENARIOS if scores[f"scenario:{s}"] >= 0.5
                    ),
                    urgent=risk or scores["urgent"] >= 0.5,
                    risk=risk,
                    intent=Intent(max(INTENTS, key=lambda i: scores[f"intent:{i}"])),
                    scores=scores,
                    model=self.name,
                )
            )
        return out


def train(path: Path) -> BaselineClassifier:
    model = BaselineClassifier.fit([*load_split("train"), *load_split("dev")])
    path.write_bytes(pickle.dumps(model))
    return model


def classify_file(model_path: Path, source: Path, sink: Path) -> int:
    model: BaselineClassifier = pickle.loads(model_path.read_bytes())  # noqa: S301 - our own file
    written = 0
    with source.open(encoding="utf-8") as inp, sink.open("w", encoding="utf-8") as out:
        batch: list[dict[str, Any]] = []
        for line in inp:
            if line.strip():
                batch.append(json.loads(line))
            if len(batch) >= BATCH:
                written += _flush(model, batch, out)
        written += _flush(model, batch, out)
    return written


def _flush(model: BaselineClassifier, batch: list[dict[str, Any]], out: Any) -> int:
    if not batch:
        return 0
    results = model.classify([item["text"] for item in batch])
    out.write(
        "".join(
            json.dumps(
                {
                    **item,
                    "scenarios": [s.value for s in r.scenarios],
                    "urgent": r.urgent,
                    "risk": r.risk,
                    "intent": r.intent.value,
                    "scores": r.scores,
                },
                ensure_ascii=False,
            )
            + "\n"
            for item, r in zip(batch, results, strict=True)
        )
    )
    count = len(batch)
    batch.clear()
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.baseline_classifier")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--model", type=Path, required=True)
    c = sub.add_parser("classify")
    c.add_argument("--model", type=Path, required=True)
    c.add_argument("--input", type=Path, required=True)
    c.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "train":
        train(args.model)
    else:
        classify_file(args.model, args.input, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
