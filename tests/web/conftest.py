"""Console fixtures: a bot with people of every role signed up and three cases triaged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from bot import migrate
from bot.app import App, build
from bot.clock import FixedClock
from bot.config import Settings
from bot.db import Database
from bot.web import auth
from tests.web.support import Seeded, add_people, seed_cases


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its lowest cost: these tests sign in dozens of times, and what they check
    is who may do what, not the hash (tests/bot/test_console_auth.py uses the real cost)."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


@pytest.fixture
def console(bot_app: App) -> App:
    """On both databases: people added, nothing else."""
    add_people(bot_app)
    return bot_app


@pytest.fixture
def seeded(console: App) -> Seeded:
    return seed_cases(console)


@pytest.fixture
def web_app(tmp_path: Path, settings: Settings, clock: FixedClock) -> Iterator[App]:
    """SQLite only, for tests of the web layer itself (access, CSRF), not of storage."""
    database = Database.from_url(f"sqlite:///{tmp_path / 'console.db'}")
    migrate.upgrade(database)
    app = build(settings, clock=clock, db=database)
    add_people(app)
    yield app
    database.dispose()
