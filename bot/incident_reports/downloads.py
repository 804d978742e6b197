"""Fetching the photos and videos Messenger and X DMs only give as URLs.

Each attachment with a URL and no stored copy gets a row in ``attachment_fetches`` (the
retry list). A round downloads the due rows with ``requests``: streamed, with connect and
read timeouts and an overall deadline, into the media store, whose size limits stop an
oversized file at its limit (a declared Content-Length over every limit is refused before
reading). The stored copy is linked to the attachment by sha256.

Nothing is dropped: a network error, a server error or an expired link is retried with
backoff (the outbox's), up to ``reports.download_attempts``, and then kept as ``failed``
with the error for a person to see; bytes that are not an accepted photo or video are kept
as ``refused`` with the reason. Only the platforms' own media hosts are fetched from, and
X's DM media (on ton.twitter.com) with the account's OAuth 1.0a credentials.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import update
from sqlmodel import Session, col, or_, select

from bot.app import App
from bot.crud import audit
from bot.delivery import backoff
from bot.media import MediaError, MediaRefused
from bot.models import AttachmentFetch, FetchStatus, Message, MessageAttachment

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30
LEASE = timedelta(minutes=15)  # a crashed download is tried again after this
MEDIA_HOSTS: dict[str, tuple[str, ...]] = {
    "facebook": ("fbcdn.net", "fbsbx.com", "facebook.com"),
    "twitter": ("twimg.com", "ton.twitter.com", "twitter.com", "x.com"),
}
SIGNED_HOSTS = ("ton.twitter.com",)  # DM media: the account's own credentials are needed


class _Retry(Exception):
    """Worth trying again later."""


class _Refuse(Exception):
    """Never worth trying again."""


@dataclass
class FetchReport:
    stored: int = 0
    retrying: int = 0
    refused: int = 0
    failed: int = 0


def queue_fetches(session: Session, messages: list[Message], *, at: datetime) -> int:
    """Add the platform-only attachments of these private messages to the retry list."""
    ids = [m.id for m in messages if m.id is not None and m.private and m.channel in MEDIA_HOSTS]
    if not ids:
        return 0
    waiting = session.exec(
        select(MessageAttachment, Message.channel)
        .join(Message, col(Message.id) == col(MessageAttachment.message_id))
        .where(
            col(MessageAttachment.message_id).in_(ids),
            col(MessageAttachment.url).is_not(None),
            col(MessageAttachment.sha256).is_(None),
        )
    ).all()
    known = set(
        session.exec(
            select(AttachmentFetch.attachment_id).where(
                col(AttachmentFetch.attachment_id).in_([a.id for a, _ in waiting])
            )
        ).all()
    )
    added = 0
    for attachment, channel in waiting:
        if attachment.id is None or attachment.id in known:
            continue
        session.add(
            AttachmentFetch(
                attachment_id=attachment.id,
                message_id=attachment.message_id,
                channel=channel,
                status=FetchStatus.PENDING,
                created_at=at,
            )
        )
        added += 1
    return added


def fetch_due(app: App, *, limit: int = 20, http: requests.Session | None = None) -> FetchReport:
    """Download up to ``limit`` due attachments; each one's outcome is committed alone."""
    report = FetchReport()
    now = app.clock.now()
    with app.db.session() as session:
        due = session.exec(
            select(AttachmentFetch.id)
            .where(
                AttachmentFetch.status == FetchStatus.PENDING,
                or_(
                    col(AttachmentFetch.next_attempt_at).is_(None),
                    col(AttachmentFetch.next_attempt_at) <= now,
                ),
            )
            .order_by(col(AttachmentFetch.id))
            .limit(limit)
        ).all()
    client = http or requests.Session()
    try:
        for fetch_id in due:
            if fetch_id is not None:
                _fetch_one(app, client, fetch_id, report)
    finally:
        if http is None:
            client.close()
    return report


def _lease(app: App, fetch_id: int) -> AttachmentFetch | None:
    """Claim a due row (a conditional update, so two workers never fetch it twice)."""
    now = app.clock.now()
    with app.db.session() as session:
        claimed = session.execute(
            update(AttachmentFetch)
            .where(
                col(AttachmentFetch.id) == fetch_id,
                col(AttachmentFetch.status) == FetchStatus.PENDING,
                or_(
                    col(AttachmentFetch.next_attempt_at).is_(None),
                    col(AttachmentFetch.next_attempt_at) <= now,
                ),
            )
            .values(attempts=col(AttachmentFetch.attempts) + 1, next_attempt_at=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return session.get(AttachmentFetch, fetch_id)


def _fetch_one(app: App, http: requests.Session, fetch_id: int, report: FetchReport) -> None:
    row = _lease(app, fetch_id)
    if row is None:
        return
    settings = app.settings
    try:
        with app.db.session() as session:
            attachment = session.get(MessageAttachment, row.attachment_id)
            if attachment is None or attachment.url is None:
                raise _Refuse("the attachment or its link no longer exists")
            url = attachment.url
        limit = max(settings.media.max_image_bytes, settings.media.max_video_bytes)
        deadline = time.monotonic() + settings.reports.download_timeout_seconds
        chunks = _download(http, url, row.channel, _auth(app, url), limit, deadline)
        with app.db.session() as session:
            now = app.clock.now()
            item = app.media.receive(session, chunks, actor="bot", at=now)
            app.media.attach(
                session,
                item,
                message_id=row.message_id,
                actor="bot",
                at=now,
                attachment_id=row.attachment_id,
            )
            _finish(session, fetch_id, FetchStatus.DONE, at=now, error=None)
        report.stored += 1
    except (_Refuse, MediaRefused) as exc:
        _record(app, fetch_id, FetchStatus.REFUSED, str(exc))
        report.refused += 1
    except (_Retry, MediaError, requests.RequestException) as exc:
        error = _describe(exc)
        if row.attempts >= settings.reports.download_attempts:
            _record(app, fetch_id, FetchStatus.FAILED, f"gave up after {row.attempts}: {error}")
            report.failed += 1
        else:
            _retry(app, fetch_id, attempt=row.attempts, error=error)
            report.retrying += 1


def _download(
    http: requests.Session, url: str, channel: str, auth: Any, limit: int, deadline: float
) -> Iterator[bytes]:
    if not _allowed(url, channel):
        raise _Refuse(f"not one of {channel}'s media hosts: {urlsplit(url).hostname}")
    with http.get(url, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), auth=auth) as response:
        if not _allowed(response.url, channel):
            raise _Refuse(f"redirected away from {channel}'s media hosts")
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retry(f"HTTP {response.status_code} from the media host")
        if response.status_code != 200:
            raise _Retry(
                f"HTTP {response.status_code} from the media host (the link may have expired)"
            )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _Refuse(
                f"the file is {int(declared) / (1 << 20):,.0f} MB, over every media size limit"
            )
        for chunk in response.iter_content(CHUNK_BYTES):
            if time.monotonic() > deadline:
                raise _Retry("the download took too long")
            if chunk:
                yield chunk


def _allowed(url: str, channel: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and any(
        host == allowed or host.endswith("." + allowed) for allowed in MEDIA_HOSTS.get(channel, ())
    )


def _auth(app: App, url: str) -> Any:
    """OAuth 1.0a for X's DM media host; nothing for public CDNs."""
    if urlsplit(url).hostname not in SIGNED_HOSTS:
        return None
    twitter = app.settings.twitter
    if twitter.missing():
        raise _Retry("X DM media needs the account's credentials (twitter settings incomplete)")
    import tweepy

    secrets = [
        s.get_secret_value() if s is not None else ""
        for s in (
            twitter.consumer_key,
            twitter.consumer_secret,
            twitter.access_token,
            twitter.access_token_secret,
        )
    ]
    return tweepy.OAuth1UserHandler(*secrets).apply_auth()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, requests.Timeout):
        return "the media host did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect to the media host"
    return str(exc) or type(exc).__name__


def _finish(
    session: Session, fetch_id: int, status: FetchStatus, *, at: datetime, error: str | None
) -> None:
    row = session.get(AttachmentFetch, fetch_id)
    if row is None:
        return
    row.status = status
    row.last_error = error
    row.done_at = at
    row.next_attempt_at = None
    session.add(row)
    if status != FetchStatus.DONE:
        audit.record(
            session,
            at=at,
            actor="bot",
            action=f"media.fetch_{status.value}",
            entity="message",
            entity_id=row.message_id,
            detail={"attachment_id": row.attachment_id, "attempts": row.attempts},
        )
        log.warning(
            "attachment fetch id=%s %s after %d attempts: %s",
            fetch_id,
            status.value,
            row.attempts,
            error,
        )


def _record(app: App, fetch_id: int, status: FetchStatus, error: str) -> None:
    with app.db.session() as session:
        _finish(session, fetch_id, status, at=app.clock.now(), error=error[:2000])


def _retry(app: App, fetch_id: int, *, attempt: int, error: str) -> None:
    with app.db.session() as session:
        row = session.get(AttachmentFetch, fetch_id)
        if row is None:
            return
        row.next_attempt_at = app.clock.now() + backoff(attempt)
        row.last_error = error[:2000]
        session.add(row)
    log.info("attachment fetch id=%s will be retried: %s", fetch_id, error)
