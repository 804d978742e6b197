"""Retention: personal data goes when its time is up, everywhere it was copied."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.app import App
from bot.clock import FixedClock
from bot.crud import audit
from bot.messages import InboundMessage
from bot.models import Case, DeadLetter, Message, MessageAttachment, OutboundMessage
from bot.retention import purge
from channels.base import Batch, Undeliverable
from tests.conftest import NOW, message_line


def _store(app: App, external_id: str, when: str) -> None:
    message = InboundMessage.model_validate(
        message_line(
            external_id,
            "fight outside the SU right now",
            received_at=when,
            attachments=[{"kind": "image", "url": "https://x/y.jpg"}],
        )
    )
    app.pipeline.run(
        Batch(
            messages=[message], failures=[Undeliverable(b"{bad" + external_id.encode(), "broken")]
        ),
        source="replay",
    )


def test_purge_removes_expired_data_and_keeps_the_rest(bot_app: App) -> None:
    clock = bot_app.clock
    assert isinstance(clock, FixedClock)
    _store(bot_app, "old", "2025-06-01T10:00:00+00:00")  # > 365 days before NOW
    _store(bot_app, "recent", "2026-11-01T10:00:00+00:00")  # < 30 days: raw payload kept
    _store(bot_app, "middle", "2026-08-01T10:00:00+00:00")  # raw payload > 30 days
    settings = bot_app.settings
    with bot_app.db.session() as session:  # one payload failed to parse 100 days ago
        letter = session.exec(select(DeadLetter).where(DeadLetter.raw == b"{badold")).one()
        letter.received_at = NOW - timedelta(days=100)
        session.add(letter)
    with bot_app.db.session() as session:
        dry = purge(session, now=NOW, retention=settings.retention, web=settings.web, dry_run=True)
    assert dry.messages_deleted == 1 and dry.raw_payloads_emptied == 2
    with bot_app.db.session() as session:
        assert len(session.exec(select(Message)).all()) == 3  # a dry run deletes nothing
        report = purge(session, now=NOW, retention=settings.retention, web=settings.web)
    assert (report.messages_deleted, report.cases_deleted) == (1, 1)
    assert report.replies_deleted >= 1 and report.dead_letters_deleted == 1
    with bot_app.db.session() as session:
        left = {m.external_id: m for m in session.exec(select(Message))}
        assert set(left) == {"recent", "middle"}
        assert left["recent"].raw is not None and left["middle"].raw is None
        assert len(session.exec(select(MessageAttachment)).all()) == 2
        assert len(session.exec(select(Case)).all()) == 2
        assert all(
            o.in_reply_to_message_id in {m.id for m in left.values()}
            for o in session.exec(select(OutboundMessage))
        )
        assert sorted(d.raw for d in session.exec(select(DeadLetter))) == [
            b"{badmiddle",
            b"{badrecent",
        ]
        assert audit.verify(session).ok
    with bot_app.db.session() as session:  # a second run finds nothing more
        again = purge(
            session, now=NOW + timedelta(minutes=1), retention=settings.retention, web=settings.web
        )
    assert (again.messages_deleted, again.raw_payloads_emptied) == (0, 0)
