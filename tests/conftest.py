"""Shared fixtures: a fresh, migrated database per test, on SQLite and on PostgreSQL.

PostgreSQL tests each get their own schema on the machine's server, so parallel runs do
not collide. Outside CI an unreachable server skips them, saying why; under CI=true it
fails the run.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot import migrate
from bot.app import App, build
from bot.clock import FixedClock
from bot.config import Settings, load_settings
from bot.db import Database, make_engine

PG_URL = os.environ.get(
    "CAMPUSBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _postgres_reachable() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            pass
        engine = make_engine(PG_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_available() -> None:
    problem = _postgres_reachable()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL at {PG_URL} is unreachable under CI: {problem}")
    pytest.skip(f"PostgreSQL at {PG_URL} unreachable ({problem}); storage tests ran on SQLite only")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'campusbot.db'}"


@pytest.fixture
def pg_schema(postgres_available: None) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = make_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database of each kind; every storage test runs on both."""
    if request.param == "sqlite":
        database = Database.from_url(f"sqlite:///{tmp_path / 'campusbot.db'}")
    else:
        schema = request.getfixturevalue("pg_schema")
        database = Database.from_url(PG_URL, search_path=schema)
    migrate.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings from an empty config, isolated from the developer's environment."""
    for name in list(os.environ):
        if name.startswith("CAMPUSBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.yaml"
    # Pipeline logic is tested with the predictable keyword stand-in; the trained model has
    # tests of its own (tests/classifiers).
    config.write_text("timezone: Europe/London\nclassifier:\n  kind: keywords\n")
    return load_settings(config)


@pytest.fixture
def bot_app(db: Database, settings: Settings, clock: FixedClock) -> App:
    return build(settings, clock=clock, db=db)


def message_line(external_id: str, text_: str, **overrides: Any) -> dict[str, Any]:
    """One replay line, as channels deliver them; override any field."""
    line: dict[str, Any] = {
        "channel": "twitter",
        "external_id": external_id,
        "conversation_id": f"conv-{external_id}",
        "author": {"id": f"user-{external_id}", "handle": "@student", "name": "A Student"},
        "text": text_,
        "private": True,
        "addressed_to_account": True,
        "received_at": "2026-11-21T11:00:00+00:00",
        "attachments": [],
        "in_reply_to": None,
    }
    line.update(overrides)
    return line


def write_jsonl(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    path.write_text(
        "\n".join(item if isinstance(item, str) else json.dumps(item) for item in lines) + "\n",
        encoding="utf-8",
    )
    return path
