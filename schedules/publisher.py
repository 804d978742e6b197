"""Publishing approved posts when they fall due, through their channels, at most once.

A due post is claimed (``approved`` -> ``publishing``, with the attempt's start time) and
committed before the API is called. If the process dies after the call but before the
result is written, the post stays ``publishing``; a later round asks the channel for its
recent posts and marks it published if it is there, sends it again if it is not, and marks
it failed for an officer to check if the channel cannot say - never a blind second post.
On PostgreSQL the claim uses ``FOR UPDATE SKIP LOCKED`` so several workers never take the
same post.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col, or_, select

from bot import posts as workflow
from bot.clock import Clock
from bot.crud import audit
from bot.db import Database
from bot.delivery import backoff
from bot.errors import (
    AuthError,
    ChannelError,
    NotSupported,
    PermanentError,
    RateLimited,
    TransientError,
)
from bot.messages import OutboundPost
from bot.models import Post, PostStatus
from bot.observability import metrics
from channels.base import Channel

log = logging.getLogger(__name__)
STALE_PUBLISHING = timedelta(minutes=10)
RECONCILE_MARGIN = timedelta(minutes=2)  # clocks differ a little between us and the platform
MAX_ATTEMPTS = 6


@dataclass
class PublishReport:
    published: int = 0
    retrying: int = 0
    failed: int = 0
    paused: bool = False


def publish_due(
    db: Database,
    channels: Mapping[str, Channel],
    clock: Clock,
    *,
    grace: timedelta,
    limit: int = 50,
) -> PublishReport:
    report = PublishReport()
    _reconcile_interrupted(db, channels, clock)
    blocked: set[str] = set()
    while report.published + report.failed + report.retrying < limit:
        claimed = _claim_one(db, list(channels), clock, grace, blocked, report)
        if claimed is None:
            break
        _publish(db, channels[claimed.channel], claimed, clock, blocked, report)
    return report


def _claim_one(
    db: Database,
    names: list[str],
    clock: Clock,
    grace: timedelta,
    blocked: set[str],
    report: PublishReport,
) -> Post | None:
    now = clock.now()
    try:
        return _claim(db, names, now, grace, blocked, report)
    except StaleDataError:
        return None  # another worker claimed or changed it first; the next round looks again


def _claim(
    db: Database,
    names: list[str],
    now: datetime,
    grace: timedelta,
    blocked: set[str],
    report: PublishReport,
) -> Post | None:
    with db.session() as session:
        kinds = workflow.publishable_kinds(session)
        report.paused = len(kinds) == 1
        query = (
            select(Post)
            .where(
                Post.status == PostStatus.APPROVED,
                col(Post.channel).in_([n for n in names if n not in blocked]),
                col(Post.kind).in_(kinds),
                col(Post.scheduled_for) <= now,
                col(Post.scheduled_for) >= now - grace,
                or_(col(Post.not_before).is_(None), col(Post.not_before) <= now),
            )
            .order_by(col(Post.scheduled_for), col(Post.id))
            .limit(1)
        )
        if db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        post = session.exec(query).first()
        if post is None:
            return None
        post.status = PostStatus.PUBLISHING
        post.attempts += 1
        post.attempt_started_at = now
        post.updated_at = now
        session.add(post)
        audit.record(
            session,
            at=now,
            actor="bot",
            action="post.transition",
            entity="post",
            entity_id=post.id or 0,
            detail={
                "from": PostStatus.APPROVED.value,
                "to": PostStatus.PUBLISHING.value,
                "attempt": post.attempts,
            },
        )
        return post


def _publish(
    db: Database,
    channel: Channel,
    post: Post,
    clock: Clock,
    blocked: set[str],
    report: PublishReport,
) -> None:
    assert post.id is not None
    try:
        result = channel.publish(OutboundPost(channel=post.channel, text=post.text, link=post.link))
    except RateLimited as exc:
        metrics.record_api_error(post.channel, exc)
        _back_to_approved(db, post.id, clock, not_before=exc.retry_at, error=str(exc))
        blocked.add(post.channel)
        report.retrying += 1
    except AuthError as exc:
        metrics.record_api_error(post.channel, exc)
        _back_to_approved(db, post.id, clock, not_before=None, error=str(exc))
        blocked.add(post.channel)
        report.retrying += 1
    except TransientError as exc:
        metrics.record_api_error(post.channel, exc)
        if post.attempts >= MAX_ATTEMPTS:
            metrics.record_publish_failed(post.channel)
            _finish(db, post.id, clock, PostStatus.FAILED, error=f"gave up: {exc}")
            report.failed += 1
        else:
            _back_to_approved(
                db, post.id, clock, not_before=clock.now() + backoff(post.attempts), error=str(exc)
            )
            report.retrying += 1
    except (PermanentError, NotSupported) as exc:
        metrics.record_api_error(post.channel, exc)
        metrics.record_publish_failed(post.channel)
        _finish(db, post.id, clock, PostStatus.FAILED, error=str(exc))
        report.failed += 1
    else:
        metrics.record_published(post.channel)
        _finish(
            db,
            post.id,
            clock,
            PostStatus.PUBLISHED,
            external_id=result.external_id,
            at=result.delivered_at,
        )
        report.published += 1


def _back_to_approved(
    db: Database, post_id: int, clock: Clock, *, not_before: datetime | None, error: str
) -> None:
    with db.session() as session:
        post = session.get(Post, post_id)
        if post is None:
            return
        post.last_error = error
        post.not_before = not_before
        post.attempt_started_at = None
        audit.record(
            session,
            at=clock.now(),
            actor="bot",
            action="post.transition",
            entity="post",
            entity_id=post_id,
            detail={"from": post.status, "to": PostStatus.APPROVED.value, "why": "will retry"},
        )
        post.status = PostStatus.APPROVED
        session.add(post)


def _finish(
    db: Database,
    post_id: int,
    clock: Clock,
    status: PostStatus,
    *,
    external_id: str | None = None,
    at: datetime | None = None,
    error: str | None = None,
    why: str | None = None,
) -> None:
    with db.session() as session:
        post = session.get(Post, post_id)
        if post is None:
            return
        detail: dict[str, object] = {"from": post.status, "to": status.value}
        if why:
            detail["why"] = why
        post.status = status
        post.updated_at = clock.now()
        if status == PostStatus.PUBLISHED:
            post.external_id = external_id
            post.published_at = at or clock.now()
            post.last_error = None
            detail["external_id"] = external_id
        else:
            post.last_error = error
        session.add(post)
        audit.record(
            session,
            at=clock.now(),
            actor="bot",
            action="post.transition",
            entity="post",
            entity_id=post_id,
            detail=detail,
        )


def _reconcile_interrupted(db: Database, channels: Mapping[str, Channel], clock: Clock) -> None:
    """Settle posts left ``publishing`` by a worker that died between the call and the commit.

    The channel's own recent posts say what happened: a post that is there is marked
    published with its id; one that is not goes back to ``approved`` and is sent at the
    next round (or expires). Where the channel cannot be asked, or the question fails, the
    post is marked failed for an officer to check, never sent again blind.
    """
    cutoff = clock.now() - STALE_PUBLISHING
    with db.session() as session:
        stuck = session.exec(
            select(Post).where(
                Post.status == PostStatus.PUBLISHING, col(Post.attempt_started_at) < cutoff
            )
        ).all()
        interrupted = [
            (p.id, p.channel, p.text, p.attempt_started_at) for p in stuck if p.id is not None
        ]
    for post_id, channel_name, text, started in interrupted:
        assert started is not None
        channel = channels.get(channel_name)
        try:
            if channel is None:
                raise NotSupported(f"{channel_name} is not configured", channel=channel_name)
            seen = channel.recent_posts(since=started - RECONCILE_MARGIN)
        except (ChannelError, NotSupported) as exc:
            metrics.record_publish_failed(channel_name)
            _finish(
                db,
                post_id,
                clock,
                PostStatus.FAILED,
                error=f"interrupted while publishing and {exc}; check the platform before "
                "retrying so it is not posted twice",
            )
            log.warning("post id=%s interrupted mid-publish; marked failed", post_id)
            continue
        match = next((p for p in seen if same_post_text(p.text, text)), None)
        if match is not None:
            metrics.record_published(channel_name)
            _finish(
                db,
                post_id,
                clock,
                PostStatus.PUBLISHED,
                external_id=match.external_id,
                at=match.published_at,
                why="found on the platform after an interrupted publish",
            )
            log.warning("post id=%s interrupted mid-publish; found published", post_id)
        else:
            _back_to_approved(
                db,
                post_id,
                clock,
                not_before=None,
                error="interrupted before it reached the platform; sending again",
            )
            log.warning("post id=%s interrupted mid-publish; not on the platform", post_id)


_URL = re.compile(r"https?://\S+")


def same_post_text(shown: str, sent: str) -> bool:
    """Platforms rewrite links (t.co) and whitespace; the words are what identify a post."""

    def words(text: str) -> list[str]:
        return _URL.sub(" ", html.unescape(text)).split()

    return words(shown) == words(sent)
