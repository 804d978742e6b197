"""Several workers publishing on PostgreSQL, one killed mid-run: each post goes out once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from sqlmodel import select

from bot.clock import FixedClock
from bot.db import Database
from bot.messages import DeliveryResult, OutboundPost, PublishedPost
from bot.models import Post, PostKind, PostStatus
from channels.fake import FakeChannel
from schedules.leader import Leadership
from schedules.publisher import publish_due
from tests.conftest import PG_URL

POSTS = 200
DUE = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)


class LoggingChannel(FakeChannel):
    """A platform stand-in shared by processes: each publish appends one line to a file."""

    name: ClassVar[str] = "twitter"

    def __init__(self, log: Path, delay: float) -> None:
        super().__init__()
        self.log, self.delay = log, delay

    def publish(self, post: OutboundPost) -> DeliveryResult:
        time.sleep(self.delay)
        at = datetime.now(UTC)
        with self.log.open("a") as handle:  # O_APPEND: whole lines, never interleaved
            handle.write(f"{post.text}\t{at.isoformat()}\n")
        return DeliveryResult(external_id=post.text, delivered_at=at)

    def recent_posts(self, since: datetime) -> list[PublishedPost]:
        posts = []
        for line in self.log.read_text().splitlines() if self.log.exists() else []:
            text, at = line.split("\t")
            posts.append(PublishedPost(external_id=text, text=text, published_at=at))
        return [p for p in posts if p.published_at >= since]


def _worker(search_path: str, log: Path, delay: float) -> None:
    db = Database.from_url(PG_URL, search_path=search_path)
    channel = LoggingChannel(log, delay)
    clock = FixedClock(DUE + timedelta(minutes=5))  # all 200 are due (one a second from DUE)
    while publish_due(db, {"twitter": channel}, clock, grace=timedelta(hours=2), limit=5).published:
        pass
    db.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_posts_are_published_once_by_competing_workers_despite_a_kill(
    pg_schema: str, tmp_path: Path
) -> None:
    db = Database.from_url(PG_URL, search_path=pg_schema)
    from bot import migrate

    migrate.upgrade(db)
    with db.session() as session:
        for i in range(POSTS):
            session.add(
                Post(
                    kind=PostKind.CAMPAIGN,
                    channel="twitter",
                    campaign="bikes",
                    text=f"post-{i}",
                    status=PostStatus.APPROVED,
                    scheduled_for=DUE + timedelta(seconds=i),
                    created_by="pat",
                    created_at=DUE,
                    updated_at=DUE,
                )
            )
    log = tmp_path / "published.log"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_worker, args=(pg_schema, log, 0.02)) for _ in range(3)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    assert workers[0].pid is not None
    os.kill(workers[0].pid, signal.SIGKILL)  # mid-run, possibly mid-publish
    for worker in workers:
        worker.join(120)
    assert workers[0].exitcode == -signal.SIGKILL  # it was still working when killed
    # A later round (any worker) settles a post left "publishing" by the dead one: published
    # if the platform has it, sent now if it does not.
    later = FixedClock(datetime.now(UTC) + timedelta(minutes=30))
    publish_due(
        db, {"twitter": LoggingChannel(log, 0)}, later, grace=timedelta(days=365), limit=POSTS
    )
    sent = Counter(line.split("\t")[0] for line in log.read_text().splitlines())
    with db.session() as session:
        posts = session.exec(select(Post)).all()
    db.dispose()
    assert max(sent.values()) == 1, "a post was published twice"
    assert len(sent) == POSTS, "a post was never published"
    assert Counter(p.status for p in posts) == {PostStatus.PUBLISHED: POSTS}
    assert all(p.external_id == p.text for p in posts)  # each one's id is the platform's


@pytest.mark.postgres
def test_one_leader_and_a_takeover_when_it_goes(pg_schema: str) -> None:
    first = Leadership(Database.from_url(PG_URL, search_path=pg_schema))
    second = Leadership(Database.from_url(PG_URL, search_path=pg_schema))
    assert first.try_acquire() is True
    assert second.try_acquire() is False
    first.release()  # as when the leader's process dies and its connection closes
    assert second.try_acquire() is True
    second.release()


def test_sqlite_worker_always_leads(sqlite_url: str) -> None:
    assert Leadership(Database.from_url(sqlite_url)).try_acquire() is True
