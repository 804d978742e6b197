"""Which worker leads the scheduler, when several run against one PostgreSQL database.

The leader holds a session-level advisory lock on a connection it keeps open. If that
process dies, PostgreSQL closes the connection and frees the lock, and the next follower to
ask becomes leader. On SQLite there is one worker per database file, so it always leads.
"""

from __future__ import annotations

import contextlib

from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.db import Database

LEADER_LOCK_KEY = 7_401_338


class Leadership:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._connection: Connection | None = None

    @property
    def is_leader(self) -> bool:
        return self.db.dialect != "postgresql" or self._connection is not None

    def try_acquire(self) -> bool:
        """Take the lead if nobody holds it; cheap to call on every scheduler tick."""
        if self.db.dialect != "postgresql":
            return True
        if self._connection is not None:
            try:  # still ours only while the connection that holds the lock is alive
                self._connection.execute(text("SELECT 1"))
                self._connection.commit()
                return True
            except Exception:
                self._drop()
        connection = self.db.engine.connect()
        got = connection.execute(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK_KEY}
        ).scalar()
        connection.commit()
        if got:
            self._connection = connection
            return True
        connection.close()
        return False

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def release(self) -> None:
        if self._connection is not None:
            self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK_KEY})
            self._connection.commit()
            self._connection.close()
            self._connection = None
