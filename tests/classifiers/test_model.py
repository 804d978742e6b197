"""The shipped model: rebuilt from the data it gives the same answers; it loads fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from classifiers.dataset import load_split
from classifiers.model import MODEL_DIR, SpacyClassifier


@pytest.mark.slow
def test_train_rebuilds_the_shipped_model_exactly(settings: object, tmp_path: Path) -> None:
    rebuilt_dir = tmp_path / "model"
    assert main(["classifier", "train", "--output", str(rebuilt_dir)]) == 0
    shipped = SpacyClassifier.load(MODEL_DIR)
    rebuilt = SpacyClassifier.load(rebuilt_dir)
    texts = [e.text for e in load_split("test")]
    assert shipped.thresholds == rebuilt.thresholds
    assert shipped.name == rebuilt.name
    for ours, theirs in zip(shipped.classify(texts), rebuilt.classify(texts), strict=True):
        assert ours.model_dump(exclude={"model"}) == theirs.model_dump(exclude={"model"})


def test_classifications_only_tag(settings: object) -> None:
    classifier = SpacyClassifier.load(MODEL_DIR)
    [result] = classifier.classify(["fight outside the SU right now, lad on the floor"])
    assert result.urgent is True
    assert result.intent.value == "report_incident"
    assert "violent_crime" in {s.value for s in result.scenarios}
    assert set(result.model_dump()) == {
        "scenarios",
        "urgent",
        "risk",
        "intent",
        "scores",
        "language",
        "model",
    }


def test_empty_and_odd_texts_are_classified_without_alarm(settings: object) -> None:
    classifier = SpacyClassifier.load(MODEL_DIR)
    results = classifier.classify(["", "   ", "🚨🚨🚨", "a" * 5000])
    assert len(results) == 4
    assert all(r.risk is False for r in results[:2])
