"""The labelled data: the committed splits follow from raw/, and every relabelling is logged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifiers.audit import disagreements, main
from classifiers.dataset import (
    DATA_DIR,
    SPLITS,
    Example,
    _normalised,
    load_raw,
    load_split,
    write_splits,
)

RELABEL_LOG = DATA_DIR / "relabelled.jsonl"


def test_committed_splits_are_what_split_rebuilds_from_raw(tmp_path: Path) -> None:
    sizes = write_splits(load_raw(), tmp_path)
    for name in SPLITS:
        assert (tmp_path / f"{name}.jsonl").read_text() == (DATA_DIR / f"{name}.jsonl").read_text()
    assert sum(sizes.values()) == len(load_raw())


def test_no_message_is_in_two_splits() -> None:
    seen: dict[str, str] = {}
    for name in SPLITS:
        for example in load_split(name):
            key = _normalised(example.text)
            assert key not in seen, f"{example.text!r} is in {seen[key]} and {name}"
            seen[key] = name


def test_every_relabelling_is_logged_with_a_rule_and_holds_in_raw() -> None:
    by_text = {e.text: e for e in load_raw()}
    entries = [json.loads(line) for line in RELABEL_LOG.read_text().splitlines()]
    assert entries, "the relabelling log is empty"
    for entry in entries:
        assert entry["rule"].startswith("R"), entry
        assert entry["old"] != entry["new"]
        example = by_text[entry["text"]]
        value = (
            list(example.scenarios)
            if entry["field"] == "scenarios"
            else getattr(example, entry["field"])
        )
        assert value == entry["new"], entry["text"]
        assert (DATA_DIR / "raw" / entry["file"]).exists()


def test_audit_lists_confident_out_of_fold_disagreements() -> None:
    examples = [
        Example("someone nicked my bike", ("theft",), False, False, "report_incident"),
        Example(
            "loud party next door", ("anti_social_behaviour",), False, False, "report_incident"
        ),
    ]
    scores = [
        {"theft": 0.9, "urgent": 0.1, "risk": 0.0, "intent:report_incident": 0.8}
        | dict.fromkeys(("drugs", "criminal_damage", "mental_health", "violent_crime"), 0.0)
        | {"anti_social_behaviour": 0.0}
        | {f"intent:{i}": 0.04 for i in ("intelligence", "ask_advice", "feedback", "other")}
        | {"intent:request_meeting": 0.04},
        {"theft": 0.95, "anti_social_behaviour": 0.2, "urgent": 0.0, "risk": 0.0}
        | dict.fromkeys(("drugs", "criminal_damage", "mental_health", "violent_crime"), 0.0)
        | {"intent:other": 0.7, "intent:report_incident": 0.1}
        | {f"intent:{i}": 0.05 for i in ("intelligence", "ask_advice", "feedback")}
        | {"intent:request_meeting": 0.05},
    ]
    found = disagreements(examples, scores)
    assert {(d.label, d.text, d.gold, d.predicted) for d in found} == {
        ("theft", "loud party next door", "False", "True"),
        ("anti_social_behaviour", "loud party next door", "True", "False"),
        ("intent", "loud party next door", "report_incident", "other"),
    }
    theft = next(d for d in found if d.label == "theft")
    assert theft.confidence == pytest.approx(0.9)


def test_audit_refuses_impossible_folds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    line = json.dumps(
        {"text": "hi", "scenarios": [], "urgent": False, "risk": False, "intent": "other"}
    )
    for name in ("train", "dev"):
        (data / f"{name}.jsonl").write_text(line + "\n")
    assert main(["--folds", "5", "--data", str(data), "--out", str(tmp_path / "a.jsonl")]) == 2
    assert "folds must be between 2 and 2" in capsys.readouterr().err
    assert not (tmp_path / "a.jsonl").exists()
