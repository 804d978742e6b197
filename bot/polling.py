"""One polling round for a channel: read since the saved cursor, store, then move the cursor.

The cursor is saved only after the messages are committed, so a crash in between reads the
same messages again next round, and de-duplication makes that harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from bot.app import App
from bot.models import ChannelCursor
from bot.pipeline import IngestReport
from channels.base import Channel

log = logging.getLogger(__name__)
STREAM = "poll"


@dataclass
class PollReport:
    ingested: IngestReport
    complete: bool


def load_cursor(session: Session, channel: str, stream: str = STREAM) -> str | None:
    row = session.exec(
        select(ChannelCursor).where(
            ChannelCursor.channel == channel, ChannelCursor.stream == stream
        )
    ).first()
    return row.cursor if row else None


def save_cursor(
    session: Session, channel: str, cursor: str, *, at: datetime, stream: str = STREAM
) -> None:
    row = session.exec(
        select(ChannelCursor).where(
            ChannelCursor.channel == channel, ChannelCursor.stream == stream
        )
    ).first()
    if row is None:
        row = ChannelCursor(channel=channel, stream=stream, cursor=cursor, updated_at=at)
    row.cursor = cursor
    row.updated_at = at
    session.add(row)


def poll_once(app: App, name: str, channel: Channel) -> PollReport:
    """Raises the channel's typed errors (RateLimited, AuthError...) for the caller to act on."""
    with app.db.session() as session:
        cursor = load_cursor(session, name)
    batch = channel.fetch(cursor)
    ingested = app.pipeline.ingest(batch, source=f"{name}:{STREAM}")
    if batch.cursor is not None:
        with app.db.session() as session:
            save_cursor(session, name, batch.cursor, at=app.clock.now())
    log.info(
        "polled channel=%s stored=%d duplicates=%d", name, ingested.stored, ingested.duplicates
    )
    return PollReport(ingested=ingested, complete=batch.exhausted)
