"""`campusbot backup` / `restore` for the embedded SQLite database.

The backup uses SQLite's online backup API, so it is consistent even while the worker and
the console keep writing. PostgreSQL deployments back up with their own tools (pg_dump,
base backups and WAL archiving); this module says so rather than half-doing it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.errors import BotError

PG_GUIDANCE = (
    "this database is PostgreSQL: back it up with its own tools, e.g. "
    "`pg_dump --format=custom --file=campusbot.dump <db>` (restore with pg_restore), or "
    "base backups with WAL archiving for point-in-time recovery; see docs in README"
)


def _sqlite_path(url: str) -> Path:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise BotError(PG_GUIDANCE)
    if not parsed.database or parsed.database == ":memory:":
        raise BotError("an in-memory database cannot be backed up")
    return Path(parsed.database)


def backup(url: str, target: Path) -> int:
    """Copy the live database to ``target``; returns the number of pages copied."""
    source_path = _sqlite_path(url)
    if not source_path.exists():
        raise BotError(f"no database at {source_path}")
    if target.exists():
        raise BotError(f"{target} exists; choose a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source_path) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
        pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
        check = copy.execute("PRAGMA integrity_check").fetchone()[0]
    if check != "ok":
        target.unlink(missing_ok=True)
        raise BotError(f"the copy failed its integrity check ({check}); nothing kept")
    return pages


def restore(url: str, source: Path) -> None:
    """Replace the configured database with a backup (stop the worker and console first)."""
    target_path = _sqlite_path(url)
    if not source.exists():
        raise BotError(f"no backup at {source}")
    with sqlite3.connect(source) as backup_db:
        try:
            check = backup_db.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BotError(f"{source} is not a usable database ({exc}); not restored") from None
        if check != "ok":
            raise BotError(f"{source} is damaged ({check}); not restored")
        target_path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(target_path) as live:
            backup_db.backup(live)
