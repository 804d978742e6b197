"""Backups of the embedded database, taken while it is in use, and restored."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import message_line, write_jsonl


def _count(config: Path, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    assert main(["--config", str(config), "inbox", "list", "--json"]) == 0
    return len([line for line in capsys.readouterr().out.splitlines() if line])


def test_backup_then_restore_brings_back_exactly_what_was_there(
    settings: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("classifier:\n  kind: keywords\n")
    c = ["--config", str(config)]
    assert main([*c, "db", "upgrade"]) == 0
    first = write_jsonl(
        tmp_path / "a.jsonl", [message_line(str(i), f"bike stolen {i}") for i in range(5)]
    )
    assert main([*c, "ingest", "--file", str(first)]) == 0
    copy = tmp_path / "backups" / "campusbot-1.db"
    assert main([*c, "backup", "--output", str(copy)]) == 0
    assert main([*c, "backup", "--output", str(copy)]) == 1  # never overwrites a backup
    later = write_jsonl(tmp_path / "b.jsonl", [message_line(f"x{i}", "noise") for i in range(3)])
    assert main([*c, "ingest", "--file", str(later)]) == 0
    assert _count(config, capsys) == 8
    assert main([*c, "restore", "--input", str(copy)]) == 2  # needs --force
    assert main([*c, "restore", "--input", str(copy), "--force"]) == 0
    assert _count(config, capsys) == 5
    assert main([*c, "audit", "verify"]) == 0


def test_damaged_backup_is_refused(
    settings: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    assert main(["--config", str(config), "restore", "--input", str(junk), "--force"]) == 1
    assert "not restored" in capsys.readouterr().err


def test_postgres_backup_points_to_pg_dump(
    settings: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CAMPUSBOT_DATABASE_URL", "postgresql+psycopg://bot@db/campus")
    assert main(["backup", "--output", str(tmp_path / "x.db")]) == 1
    assert "pg_dump" in capsys.readouterr().err
