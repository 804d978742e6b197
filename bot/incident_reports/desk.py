"""One round of report work, for the worker: conversations, idle reports, media downloads.

Messages are read past a cursor kept in ``channel_cursors`` (channel ``reports``), in id
order, once the pipeline has processed them; the cursor moves in the same transaction as
the replies and report changes it caused, so a crash repeats nothing and loses nothing.
The cursor row is updated first, which makes concurrent rounds (two workers, or SQLite's
one writer) queue behind each other instead of handling a message twice.

A message the pipeline has not processed yet holds the cursor back (it is usually being
processed right now); one still unprocessed after ``STALL`` is passed over and logged,
so one broken message cannot stop every conversation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.app import App
from bot.incident_reports.codes import report_key
from bot.incident_reports.conversation import Outcome, Turns
from bot.incident_reports.downloads import FetchReport, fetch_due, queue_fetches
from bot.incident_reports.flags import lock_case_keys
from bot.incident_reports.web import link_waiting
from bot.models import ChannelCursor, Message, MessageState

log = logging.getLogger(__name__)

CURSOR_CHANNEL = "reports"
CURSOR_STREAM = "messages"
STALL = timedelta(minutes=10)
BATCH = 200


@dataclass
class DeskReport:
    handled: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    filed_idle: int = 0
    web_linked: int = 0
    fetches_queued: int = 0
    fetched: FetchReport = field(default_factory=FetchReport)


def run_round(app: App, *, limit: int = BATCH, fetch: bool = True) -> DeskReport:
    """Handle new messages, file idle conversations, then download due media."""
    report = DeskReport()
    while True:
        handled = _handle_batch(app, limit, report)
        if handled < limit:
            break
    with app.db.session() as session:
        _claim_cursor(session, app)
        report.web_linked = link_waiting(session, at=app.clock.now(), app=app)
        report.filed_idle = _turns(app, session).file_idle()
    if fetch:
        report.fetched = fetch_due(app)
    return report


def _turns(app: App, session: Session) -> Turns:
    return Turns(
        session=session, settings=app.settings, key=report_key(app.settings), at=app.clock.now()
    )


def _claim_cursor(session: Session, app: App) -> int:
    """Lock the cursor row for this transaction and return where it stands."""
    now = app.clock.now()
    where = (
        col(ChannelCursor.channel) == CURSOR_CHANNEL,
        col(ChannelCursor.stream) == CURSOR_STREAM,
    )
    for _ in range(2):
        row = session.execute(
            update(ChannelCursor)
            .where(*where)
            .values(updated_at=now)
            .returning(col(ChannelCursor.cursor))
        ).first()
        if row is not None:
            return int(row[0])
        try:
            with session.begin_nested():
                session.add(
                    ChannelCursor(
                        channel=CURSOR_CHANNEL, stream=CURSOR_STREAM, cursor="0", updated_at=now
                    )
                )
        except IntegrityError:
            continue  # another round made it first: lock theirs
    raise RuntimeError("could not create the reports cursor")


def _handle_batch(app: App, limit: int, report: DeskReport) -> int:
    with app.db.session() as session:
        cursor = _claim_cursor(session, app)
        messages = list(
            session.exec(
                select(Message)
                .where(col(Message.id) > cursor)
                .order_by(col(Message.id))
                .limit(limit)
            )
        )
        ready: list[Message] = []
        now = app.clock.now()
        for message in messages:
            if message.state != MessageState.PROCESSED:
                if message.ingested_at > now - STALL:
                    break  # being processed: wait for it
                log.warning("reports: message id=%s never processed; passed over", message.id)
            ready.append(message)
        if not ready:
            return 0
        lock_case_keys(
            session,
            {(m.channel, m.conversation_id, m.author_id) for m in ready if m.private},
        )
        turns = _turns(app, session)
        for message in ready:
            if message.state != MessageState.PROCESSED:
                continue
            outcome = turns.handle(message)
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
        report.handled += len(ready)
        report.fetches_queued += queue_fetches(session, ready, at=now)
        session.execute(
            update(ChannelCursor)
            .where(
                col(ChannelCursor.channel) == CURSOR_CHANNEL,
                col(ChannelCursor.stream) == CURSOR_STREAM,
            )
            .values(cursor=str(ready[-1].id))
        )
        started = report.outcomes.get(Outcome.STARTED, 0)
        log.info("reports: handled=%d started=%d", len(ready), started)
        return len(messages) if len(ready) == len(messages) else 0
