"""The command line as an operator meets it, run in-process through ``bot.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.paths import SAMPLE_MESSAGES
from tests.conftest import message_line, write_jsonl


@pytest.fixture
def cli(settings: object, tmp_path: Path) -> Path:
    """A working folder with the default config: SQLite in ./var, as after a clone."""
    config = tmp_path / "config.yaml"
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    return config


def _inbox(config: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["--config", str(config), "inbox", "list", "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def test_ingest_twice_keeps_one_copy(
    cli: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(
        tmp_path / "in.jsonl",
        [
            message_line("1", "someone nicked my bike from the library racks"),
            message_line("2", "there's a fight outside the SU right now", channel="facebook"),
        ],
    )
    assert main(["--config", str(cli), "ingest", "--channel", "replay", "--file", str(data)]) == 0
    assert main(["--config", str(cli), "ingest", "--file", str(data)]) == 0
    rows = _inbox(cli, capsys)
    assert len(rows) == 2
    assert rows[0]["external_id"] == "2" and rows[0]["urgent"] is True  # urgent first
    assert set(rows[0]) >= {
        "channel",
        "external_id",
        "text",
        "scenarios",
        "urgent",
        "risk",
        "intent",
        "status",
    }
    assert rows[1]["scenarios"] == ["theft"]


def test_broken_lines_exit_non_zero_keep_the_good_and_dead_letter_the_bad(
    cli: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            message_line("1", "bike stolen"),
            "{not json",
            message_line("2", "laptop stolen"),
            json.dumps({"channel": "twitter"}),
        ],
    )
    assert main(["--config", str(cli), "ingest", "--file", str(data)]) == 1
    captured = capsys.readouterr()
    assert "2 line(s) could not be read" in captured.err
    assert len(_inbox(cli, capsys)) == 2
    assert main(["--config", str(cli), "deadletter", "list"]) == 0
    listing = capsys.readouterr().out
    assert "mixed.jsonl:2" in listing and "malformed JSON" in listing
    assert "mixed.jsonl:4" in listing and "external_id: Field required" in listing
    assert "2 dead letter(s)" in listing
    # Retrying the same bytes fails the same way: still kept, still reported.
    assert main(["--config", str(cli), "deadletter", "retry"]) == 1
    assert "still failing 2" in capsys.readouterr().out


def test_missing_file_is_a_usage_error(cli: Path, tmp_path: Path) -> None:
    assert main(["--config", str(cli), "ingest", "--file", str(tmp_path / "none.jsonl")]) == 2


def test_templates_need_approval_and_approval_is_audited(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(cli), "templates", "list"]) == 0
    assert "NOT APPROVED" in capsys.readouterr().out
    assert (
        main(
            [
                "--config",
                str(cli),
                "templates",
                "approve",
                "replies/acknowledgement.txt.j2",
                "--by",
                "sgt.hughes",
            ]
        )
        == 0
    )
    assert main(["--config", str(cli), "templates", "approve", "nope.j2", "--by", "x"]) == 2
    capsys.readouterr()
    assert main(["--config", str(cli), "audit", "verify"]) == 0
    assert "audit log intact: 1 entries" in capsys.readouterr().out


def test_db_current_reports_latest(cli: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(cli), "db", "current"]) == 0
    printed = capsys.readouterr().out
    current = printed.split("current ")[1].split(",")[0]
    assert current.startswith("00") and f"latest {current}" in printed


def test_worker_once_processes_what_was_stored(
    cli: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.app import build
    from bot.config import load_settings
    from bot.messages import InboundMessage
    from channels.base import Batch

    app = build(load_settings(cli))  # stored by a webhook, say: not yet processed
    app.pipeline.ingest(
        Batch(
            messages=[
                InboundMessage.model_validate(
                    message_line("w1", "my laptop was stolen from the library")
                )
            ]
        ),
        source="replay",
    )
    app.close()
    assert _inbox(cli, capsys) == []  # the inbox shows processed messages only
    assert main(["--config", str(cli), "worker", "--once"]) == 0
    [row] = _inbox(cli, capsys)
    assert row["external_id"] == "w1" and row["scenarios"] == ["theft"]


def test_demo_replays_the_sample_and_is_repeatable(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample_lines = [x for x in SAMPLE_MESSAGES.read_text().splitlines() if x.strip()]
    assert main(["--config", str(cli), "demo"]) == 0
    first = capsys.readouterr().out
    stored_row = next(line for line in first.splitlines() if "messages stored" in line)
    assert stored_row.replace("│", " ").split()[-1] == str(len(sample_lines))
    assert "acknowledgements queued" in first and "urgent cases" in first
    rows = _inbox(cli, capsys)
    assert len(rows) == len(sample_lines)
    assert main(["--config", str(cli), "demo"]) == 0
    assert len(_inbox(cli, capsys)) == len(sample_lines)
    # replaying the sample again on top is a no-op
    assert main(["--config", str(cli), "ingest", "--file", str(SAMPLE_MESSAGES)]) == 0
    assert len(_inbox(cli, capsys)) == len(sample_lines)


def test_demo_refuses_a_database_it_does_not_own(
    cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CAMPUSBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'precious.db'}")
    assert main(["--config", str(cli), "demo"]) == 2
    assert "refusing to reset" in capsys.readouterr().err
