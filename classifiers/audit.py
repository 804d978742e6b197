"""Label audit: where does a model trained without an example disagree with its label?

Each example of train + dev is predicted by a pipeline trained on the other folds
(k-fold cross-validation, the same training code as the shipped model). The examples the
out-of-fold model gets most confidently wrong are the first to re-read against
``data/LABELLING.md``: some are model errors, some are labels that break the written rules.
The test split is never read here, so auditing cannot leak into the held-out figures.

    python -m classifiers.audit --folds 5 --out audit.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from classifiers.base import INTENTS, SCENARIOS
from classifiers.dataset import DATA_DIR, Example, load_split
from classifiers.text import prepare


@dataclass(frozen=True)
class Disagreement:
    label: str  # a scenario, "urgent", "risk" or "intent"
    text: str
    gold: str
    predicted: str
    confidence: float  # how sure the out-of-fold model was of its (wrong) answer

    def as_json(self) -> dict[str, object]:
        return {
            "label": self.label,
            "text": self.text,
            "gold": self.gold,
            "predicted": self.predicted,
            "confidence": round(self.confidence, 4),
        }


def out_of_fold_scores(
    examples: Sequence[Example], folds: int, seed: int = 1
) -> list[dict[str, float]]:
    """The model's scores for every example, each from a model that never saw it."""
    from classifiers import train

    if folds < 2 or folds > len(examples):
        raise ValueError(f"folds must be between 2 and {len(examples)}")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    scores: list[dict[str, float]] = [{} for _ in examples]
    for k in range(folds):
        held = set(order[k::folds])
        nlp = train.build_pipeline()
        train.fit(nlp, [examples[i] for i in order if i not in held])
        held_out = sorted(held)
        docs = nlp.pipe(prepare(examples[i].text) for i in held_out)
        for i, doc in zip(held_out, docs, strict=True):
            scores[i] = dict(doc.cats)
    return scores


def disagreements(
    examples: Sequence[Example], scores: Sequence[dict[str, float]]
) -> list[Disagreement]:
    """Confident out-of-fold disagreements, most confident first, per label."""
    found: list[Disagreement] = []
    for example, cats in zip(examples, scores, strict=True):
        flags = {s: s in example.scenarios for s in SCENARIOS}
        flags |= {"urgent": example.urgent or example.risk, "risk": example.risk}
        for label, gold in flags.items():
            p = cats[label]
            if gold != (p >= 0.5):
                found.append(
                    Disagreement(label, example.text, str(gold), str(p >= 0.5), abs(p - 0.5) * 2)
                )
        intent = max(INTENTS, key=lambda i: cats[f"intent:{i}"])
        if intent != example.intent:
            found.append(
                Disagreement(
                    "intent", example.text, example.intent, intent, cats[f"intent:{intent}"]
                )
            )
    return sorted(found, key=lambda d: (d.label, -d.confidence))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifiers.audit", description=__doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder with the splits")
    parser.add_argument("--out", type=Path, required=True, help="JSONL of disagreements")
    args = parser.parse_args(argv)
    examples = [*load_split("train", args.data), *load_split("dev", args.data)]
    try:
        scores = out_of_fold_scores(examples, args.folds)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found = disagreements(examples, scores)
    with args.out.open("w", encoding="utf-8") as handle:
        for item in found:
            handle.write(json.dumps(item.as_json(), ensure_ascii=False) + "\n")
    per_label: dict[str, int] = {}
    for item in found:
        per_label[item.label] = per_label.get(item.label, 0) + 1
    print(f"{len(examples)} examples, {len(found)} disagreements -> {args.out}")
    for label, count in sorted(per_label.items()):
        print(f"  {label}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
