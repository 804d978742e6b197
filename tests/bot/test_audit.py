"""The audit log is append-only in practice: any edit or deletion is detected."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from bot.crud import audit
from bot.db import Database
from tests.conftest import NOW


def _fill(db: Database, n: int) -> None:
    with db.session() as session:
        for i in range(n):
            audit.record(
                session,
                at=NOW + timedelta(seconds=i),
                actor="officer.1",
                action="case.assigned",
                entity="case",
                entity_id=i,
                detail={"assignee": "officer.2", "priority": "P3"},
            )


def test_intact_chain_verifies(db: Database) -> None:
    _fill(db, 5)
    with db.session() as session:
        result = audit.verify(session)
    assert result.ok and result.entries == 5


def test_edited_entry_is_detected(db: Database) -> None:
    _fill(db, 5)
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET actor = 'someone.else' WHERE id = 3"))
    with db.session() as session:
        result = audit.verify(session)
    assert not result.ok and result.first_bad_id == 3


def test_deleted_entry_is_detected(db: Database) -> None:
    _fill(db, 5)
    with db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id = 2"))
    with db.session() as session:
        result = audit.verify(session)
    assert result.first_bad_id == 3


def test_entries_link_to_their_predecessor(db: Database) -> None:
    _fill(db, 3)
    with db.session() as session:
        first = audit.record(session, at=NOW, actor="a", action="x", entity="case", entity_id=1)
        second = audit.record(session, at=NOW, actor="a", action="x", entity="case", entity_id=1)
    assert second.prev_hash == first.hash
    assert first.hash != second.hash
