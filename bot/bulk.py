"""Batched inserts and updates that stay fast on both databases.

The pipeline writes thousands of rows per batch. The right batched form differs:

- SQLite is in-process, so ``executemany`` of one small prepared statement is cheapest.
- On PostgreSQL that would be one round trip per row, and SQLAlchemy's multi-row VALUES
  form makes statements with tens of thousands of placeholders, which psycopg re-parses on
  every call (it only caches short statements). One ``unnest()`` of per-column arrays per
  batch is a single small statement with one parameter per column, whatever the row count.

Rows are dicts keyed by column name; every row of a call has the same keys.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Column, Row, Table, TypeDecorator, bindparam, insert, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlmodel import Session

_PG = PGDialect_psycopg()  # type: ignore[no-untyped-call]


def insert_rows(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    returning: Sequence[str] = (),
    skip_conflicts_on: Sequence[str] = (),
) -> list[Row[Any]]:
    """Insert ``rows``; with ``skip_conflicts_on``, rows clashing on those columns are skipped.

    Returns the ``returning`` columns of the rows actually inserted, in no particular order.
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return _pg_insert(session, table, rows, returning, skip_conflicts_on)
    statement: Any
    if skip_conflicts_on:
        statement = sqlite.insert(table).on_conflict_do_nothing(
            index_elements=list(skip_conflicts_on)
        )
    else:
        statement = insert(table)
    if returning:
        statement = statement.returning(*(table.c[name] for name in returning))
        return list(session.execute(statement, list(rows)))
    session.execute(statement, list(rows))
    return []


def update_rows(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], *, key: str = "id"
) -> None:
    """Set, in each row of ``table`` whose ``key`` matches, the other columns given."""
    if not rows:
        return
    columns = [name for name in rows[0] if name != key]
    if session.get_bind().dialect.name == "postgresql":
        names = [key, *columns]
        arrays = _pg_arrays(table, names, rows)
        assignments = ", ".join(f'"{name}" = v."{name}"' for name in columns)
        session.execute(
            text(
                f'UPDATE "{table.name}" AS t SET {assignments} '  # noqa: S608 - names from our schema
                f"FROM {_pg_unnest(table, names)} AS v({_quoted(names)}) "
                f'WHERE t."{key}" = v."{key}"'
            ),
            arrays,
        )
        return
    statement = (
        update(table)
        .where(table.c[key] == bindparam(f"k_{key}"))
        .values({name: bindparam(f"v_{name}") for name in columns})
    )
    session.execute(
        statement,
        [{f"k_{key}": row[key], **{f"v_{name}": row[name] for name in columns}} for row in rows],
    )


def _pg_insert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    returning: Sequence[str],
    skip_conflicts_on: Sequence[str],
) -> list[Row[Any]]:
    names = list(rows[0])
    sql = (
        f'INSERT INTO "{table.name}" ({_quoted(names)}) '  # noqa: S608 - names from our schema
        f"SELECT * FROM {_pg_unnest(table, names)}"
    )
    if skip_conflicts_on:
        sql += f" ON CONFLICT ({_quoted(skip_conflicts_on)}) DO NOTHING"
    if not returning:
        session.execute(text(sql), _pg_arrays(table, names, rows))
        return []
    statement = text(f"{sql} RETURNING {_quoted(returning)}").columns(
        *(table.c[name] for name in returning)
    )
    return list(session.execute(statement, _pg_arrays(table, names, rows)))


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _pg_unnest(table: Table, names: Sequence[str]) -> str:
    casts = ", ".join(
        f"CAST(:a_{i} AS {_pg_type(table.c[name])}[])" for i, name in enumerate(names)
    )
    return f"unnest({casts})"


def _pg_type(column: Column[Any]) -> str:
    return str(column.type.compile(dialect=_PG))


def _pg_arrays(
    table: Table, names: Sequence[str], rows: Sequence[dict[str, Any]]
) -> dict[str, list[Any]]:
    arrays: dict[str, list[Any]] = {}
    for i, name in enumerate(names):
        column_type = table.c[name].type
        values = [row[name] for row in rows]
        if isinstance(column_type, JSON):
            values = [json.dumps(v) for v in values]  # None is JSON null, as SQLAlchemy stores it
        elif isinstance(column_type, TypeDecorator):
            processor = column_type.bind_processor(_PG)
            if processor is not None:
                values = [processor(v) for v in values]
        arrays[f"a_{i}"] = values
    return arrays
