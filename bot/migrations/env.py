"""Alembic environment: runs on the connection the bot hands it (so tests can pick a schema)."""

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import bot.models  # noqa: F401  (registers every table on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `campusbot db upgrade`, which passes a connection")
run(connection)
