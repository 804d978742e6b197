"""`campusbot privacy export|erase` as an operator runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app import App
from bot.cli import main
from tests.bot.test_privacy import (
    ADMIN,
    ALEX_NEEDLES,
    SAM_EMAIL,
    SAM_FACEBOOK,
    SAM_NEEDLES,
    SAM_PHRASE,
    SAM_TWITTER,
    Seeded,
    media_on_disk,
    seed,
    tables,
    traces,
)
from tests.conftest import PG_URL

SAM_ARGS = [
    "--author",
    f"twitter:{SAM_TWITTER}",
    "--author",
    f"facebook:{SAM_FACEBOOK}",
    "--author",
    f"in_the_know:{SAM_EMAIL}",
    "--by",
    ADMIN,
]


@pytest.fixture
def seeded(bot_app: App) -> Seeded:
    return seed(bot_app)


@pytest.fixture
def config(bot_app: App, seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The seeded test database, reached by the CLI through CAMPUSBOT_DATABASE_URL."""
    db = bot_app.db
    if db.dialect == "postgresql":
        with db.engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    else:
        url = db.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("CAMPUSBOT_DATABASE_URL", url)
    return tmp_path / "config.yaml"  # written by the settings fixture


def _run(config: Path, *args: str) -> int:
    return main(["--config", str(config), "privacy", *args])


def test_export_writes_the_person_and_nobody_else(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "requests" / "dpa-1"
    assert _run(config, "export", *SAM_ARGS, "--output", str(folder), "--request", "DPA-1") == 0
    out = capsys.readouterr().out
    assert "request DPA-1" in out and "  messages: 3" in out and "  dead letters: 2" in out
    written = folder / "subject-access.json"
    assert len(list((folder / "media").iterdir())) == 2  # Sam's photo, and the one both sent
    document = json.loads(written.read_text(encoding="utf-8"))
    assert document["request"] == "DPA-1" and document["generated_by"] == ADMIN
    assert any(SAM_PHRASE in m["text"] for m in document["messages"])
    raw = written.read_text(encoding="utf-8").lower()
    assert all(n.lower() not in raw for n in ALEX_NEEDLES)
    # the same path again is refused rather than overwritten
    assert _run(config, "export", *SAM_ARGS, "--output", str(folder)) == 1
    assert "must be a new .json file or a new or empty folder" in capsys.readouterr().err


def test_erase_asks_for_confirmation_dry_runs_then_erases_once(
    bot_app: App, seeded: Seeded, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = bot_app.db
    before = tables(db)
    assert _run(config, "erase", *SAM_ARGS) == 2  # no --yes: refused, nothing touched
    assert "cannot be undone" in capsys.readouterr().err
    assert _run(config, "erase", *SAM_ARGS, "--dry-run") == 0
    captured = capsys.readouterr()
    assert "would erase:\n  messages: 3" in captured.out and "nothing changed" in captured.err
    assert tables(db) == before
    alex = traces(db, ALEX_NEEDLES)
    assert _run(config, "erase", *SAM_ARGS, "--yes", "--request", "DPA-2") == 0
    assert "erased:\n  messages: 3" in capsys.readouterr().out
    assert traces(db, SAM_NEEDLES) == []
    assert media_on_disk(bot_app) == {seeded.shared_photo, seeded.alex_photo}
    assert traces(db, ALEX_NEEDLES) == alex
    assert _run(config, "erase", "--author", "@sam_uclan", "--by", ADMIN, "--yes") == 1
    assert "no messages from @sam_uclan" in capsys.readouterr().err  # they are gone
    assert _run(config, "erase", *SAM_ARGS, "--yes") == 0
    assert "  messages: 0" in capsys.readouterr().out
    assert main(["--config", str(config), "audit", "verify"]) == 0


def test_refusals_name_the_problem(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        _run(config, "erase", "--author", f"twitter:{SAM_TWITTER}", "--by", "pc.jones", "--yes")
        == 1
    )
    assert "need the admin role; pc.jones does not have it" in capsys.readouterr().err
    assert _run(config, "erase", "--author", "myspace:1", "--by", ADMIN, "--dry-run") == 1
    assert "unknown channel 'myspace'" in capsys.readouterr().err
    bad = ["--request", "Sam Taylor", "--dry-run"]
    assert _run(config, "erase", "--author", "@sam_uclan", "--by", ADMIN, *bad) == 1
    assert "never the person's name" in capsys.readouterr().err
