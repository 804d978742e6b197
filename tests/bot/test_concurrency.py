"""Several processes working the same database: every message processed once, one case each."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import select

from bot.app import App, build
from bot.db import Database
from bot.messages import InboundMessage
from bot.models import Case, Message, MessageState, OutboundMessage
from channels.base import Batch
from tests.conftest import message_line

CONVERSATIONS = 40
PER_CONVERSATION = 10


def _work(url: str, search_path: str | None, settings_json: str) -> None:
    from bot.config import Settings

    settings = Settings.model_validate_json(settings_json)
    app = build(settings, db=Database.from_url(url, search_path=search_path))
    app.pipeline.process_pending(limit=25)
    app.close()


def test_two_processes_never_process_a_message_twice(bot_app: App) -> None:
    start = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    messages = [
        InboundMessage.model_validate(
            message_line(
                f"{c}-{i}",
                "fight outside the SU right now" if i == 5 else "my bike was stolen",
                conversation_id=f"conv-{c}",
                author={"id": f"user-{c}"},
                received_at=(start + timedelta(seconds=c * 100 + i)).isoformat(),
            )
        )
        for c in range(CONVERSATIONS)
        for i in range(PER_CONVERSATION)
    ]
    bot_app.pipeline.ingest(Batch(messages=messages), source="replay")
    engine_url = bot_app.db.engine.url.render_as_string(hide_password=False)
    options = bot_app.db.engine.dialect.name == "postgresql"
    search_path = None
    if options:
        with bot_app.db.engine.connect() as connection:
            search_path = connection.exec_driver_sql("SHOW search_path").scalar()
    bot_app.db.dispose()
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(
            target=_work, args=(engine_url, search_path, bot_app.settings.model_dump_json())
        )
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with bot_app.db.session() as session:
        states = session.exec(select(Message.state, func.count()).group_by(Message.state)).all()
        cases = session.exec(select(Case)).all()
        acks = session.exec(select(OutboundMessage)).all()
    assert dict(states) == {MessageState.PROCESSED.value: CONVERSATIONS * PER_CONVERSATION}
    assert len(cases) == CONVERSATIONS  # one per conversation, never opened twice
    assert {c.priority for c in cases} == {"P2"}  # the urgent message raised each; none lowered
    # one first-contact acknowledgement per person plus one per urgent message
    assert len(acks) == 2 * CONVERSATIONS
