"""Batched writes behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select

from bot import bulk
from bot.db import Database
from bot.models import Message

MESSAGES = cast(Table, Message.__table__)  # type: ignore[attr-defined]
AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def _row(external_id: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "channel": "twitter",
        "external_id": external_id,
        "conversation_id": "c1",
        "author_id": "u1",
        "text": "someone nicked my bike 🚲 من فضلك",
        "private": True,
        "addressed_to_account": True,
        "received_at": AT,
        "ingested_at": AT,
        "raw": {"nested": {"list": [1, 2]}},
        "state": "received",
        "scenarios": [],
        "scores": {},
    }
    row.update(overrides)
    return row


def test_insert_skips_conflicts_and_returns_only_new_rows(db: Database) -> None:
    with db.session() as session:
        first = bulk.insert_rows(
            session,
            MESSAGES,
            [_row("1"), _row("2", raw=None)],
            returning=("id", "external_id"),
            skip_conflicts_on=("channel", "external_id"),
        )
        again = bulk.insert_rows(
            session,
            MESSAGES,
            [_row("2"), _row("3")],
            returning=("id", "external_id"),
            skip_conflicts_on=("channel", "external_id"),
        )
    assert sorted(r.external_id for r in first) == ["1", "2"]
    assert [r.external_id for r in again] == ["3"]
    with db.session() as session:
        stored = session.execute(
            select(
                MESSAGES.c.external_id, MESSAGES.c.text, MESSAGES.c.raw, MESSAGES.c.received_at
            ).order_by(MESSAGES.c.external_id)
        ).all()
    assert [r.external_id for r in stored] == ["1", "2", "3"]
    assert stored[0].text == "someone nicked my bike 🚲 من فضلك"
    assert stored[0].raw == {"nested": {"list": [1, 2]}}
    assert stored[1].raw is None
    assert stored[0].received_at == AT  # aware UTC in, aware UTC out


def test_update_sets_only_the_given_columns_of_matching_rows(db: Database) -> None:
    with db.session() as session:
        ids = {
            r.external_id: r.id
            for r in bulk.insert_rows(
                session, MESSAGES, [_row("1"), _row("2")], returning=("id", "external_id")
            )
        }
    later = AT + timedelta(minutes=5)
    with db.session() as session:
        bulk.update_rows(
            session,
            MESSAGES,
            [
                {
                    "id": ids["1"],
                    "state": "processed",
                    "scores": {"theft": 0.9},
                    "processed_at": later,
                },
                {"id": 999_999, "state": "processed", "scores": {}, "processed_at": later},
            ],
        )
    with db.session() as session:
        rows = {
            r.external_id: r
            for r in session.execute(
                select(
                    MESSAGES.c.external_id,
                    MESSAGES.c.state,
                    MESSAGES.c.scores,
                    MESSAGES.c.processed_at,
                    MESSAGES.c.text,
                )
            )
        }
    assert rows["1"].state == "processed"
    assert rows["1"].scores == {"theft": 0.9}
    assert rows["1"].processed_at == later
    assert rows["1"].text.startswith("someone nicked")
    assert rows["2"].state == "received"
    assert rows["2"].processed_at is None


def test_empty_batches_write_nothing(db: Database) -> None:
    with db.session() as session:
        assert bulk.insert_rows(session, MESSAGES, [], returning=("id",)) == []
        bulk.update_rows(session, MESSAGES, [])
        assert session.execute(select(MESSAGES.c.id)).all() == []
