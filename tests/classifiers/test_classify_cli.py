"""`campusbot classify` and `campusbot classifier evaluate`, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from classifiers.base import INTENTS, SCENARIOS
from classifiers.dataset import DATA_DIR


def _run(settings: object, *argv: str) -> int:
    return main(list(argv))


def test_classify_keeps_fields_adds_tags_and_skips_broken_lines(
    settings: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps({"id": 1, "text": "someone nicked my bike from the library racks"}),
                "{broken",
                json.dumps({"id": 2, "text": "my mate is unconscious and not breathing"}),
                json.dumps({"id": 3, "nope": "no text"}),
                json.dumps({"id": 4, "text": "سرقت دراجتي 🚲 \u202e"}),
            ]
        )
        + "\n"
    )
    target = tmp_path / "out.jsonl"
    code = main(["classify", "--input", str(source), "--output", str(target)])
    captured = capsys.readouterr()
    assert code == 1
    assert "line 2: malformed JSON" in captured.err
    assert "line 4: expected an object" in captured.err
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 4]
    for row in rows:
        assert set(row["scenarios"]) <= set(SCENARIOS)
        assert isinstance(row["urgent"], bool) and isinstance(row["risk"], bool)
        assert row["intent"] in INTENTS
        expected_keys = {f"scenario:{s}" for s in SCENARIOS} | {f"intent:{i}" for i in INTENTS}
        assert set(row["scores"]) == expected_keys | {"urgent", "risk"}
        assert all(0.0 <= v <= 1.0 for v in row["scores"].values())
    assert "theft" in rows[0]["scenarios"]
    assert rows[1]["risk"] is True and rows[1]["urgent"] is True
    assert rows[2]["text"] == "سرقت دراجتي 🚲 \u202e"


def test_classify_reads_stdin_and_writes_stdout(
    settings: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "loud party next door at 3am"}\n'))
    assert main(["classify", "--input", "-", "--output", "-"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["text"] == "loud party next door at 3am"
    assert "anti_social_behaviour" in row["scenarios"]


def test_evaluate_prints_figures_and_writes_json(
    settings: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = tmp_path / "figures.json"
    test_split = DATA_DIR / "test.jsonl"
    assert main(["classifier", "evaluate", "--data", str(test_split), "--json", str(figures)]) == 0
    printed = capsys.readouterr().out
    assert "scenario macro-F1" in printed and "intent confusion" in printed
    report = json.loads(figures.read_text())
    assert report["examples"] == len(test_split.read_text().splitlines())
    assert 0.0 <= report["scenario_macro_f1"] <= 1.0
    assert set(report["scenarios"]) == set(SCENARIOS)


def test_evaluate_refuses_badly_labelled_data(
    settings: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(
            {"text": "x", "scenarios": ["arson"], "urgent": False, "risk": False, "intent": "other"}
        )
        + "\n"
    )
    assert main(["classifier", "evaluate", "--data", str(bad)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err
