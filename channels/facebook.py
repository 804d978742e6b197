"""The university's Facebook Page: Messenger, page comments and posts, via facebook-sdk.

- Webhooks (Rasa-style, owned here): the GET verification echoes ``hub.challenge`` only for
  the configured verify token; a POST is accepted only with a valid ``X-Hub-Signature-256``
  (HMAC-SHA256 of the raw body with the app secret, compared in constant time), checked
  before anything is parsed. Messages (text, image, video), postbacks and new comments on
  the page's posts become messages; echoes, receipts and the page's own comments do not.
- Polling fallback for comments: the page's recent posts, then each post's comments
  (``filter=stream`` so replies come too, oldest first) since a time kept per post in the
  cursor. A comment has the same id in a webhook (``comment_id``) and in Graph (``id``),
  so one seen both ways is one message.
- facebook-sdk's own version check stops at 3.x, so the Graph version from config goes in
  every path (``v25.0/me/messages``) through ``GraphAPI.request``.
- Messenger policy: inside 24 hours of the person's last message, ``RESPONSE``; after that
  only a person's reply, with the ``HUMAN_AGENT`` tag, up to 7 days; otherwise refused. A
  Private Reply to a comment is allowed once, within 7 days of it.
- Errors: codes 4, 17, 32, 613 and 80001 are rate limits (``RateLimited`` at the time the
  usage headers give, else in 15 minutes); 190 means the token expired (``AuthError``: posts
  stay queued); 1, 2 and server errors are transient; an insights metric Meta no longer
  knows is ``UnknownMetric``; anything else is permanent. Bulk reads (polling, insights)
  also pause on their own once any usage header passes ``USAGE_CEILING`` percent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import facebook
import requests
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from bot.clock import Clock, SystemClock
from bot.config import FacebookSettings
from bot.errors import (
    AuthError,
    ChannelError,
    ConfigError,
    PermanentError,
    RateLimited,
    TransientError,
)
from bot.messages import (
    Attachment,
    AttachmentKind,
    Author,
    Capabilities,
    DeliveryResult,
    InboundMessage,
    OutboundPost,
    OutboundReply,
    PublishedPost,
)
from channels.base import (
    BaseChannel,
    Batch,
    ChannelStatus,
    Health,
    Undeliverable,
    listed,
    parser,
    read_capped,
)
from channels.registry import PLATFORM_CAPABILITIES

log = logging.getLogger(__name__)

TIMEOUT = 30
MAX_WEBHOOK_BYTES = 2 * 1024 * 1024
RATE_LIMIT_CODES = {4, 17, 32, 613, 80001, 80002, 80003, 80004, 80005, 80006, 80008}
TRANSIENT_CODES = {1, 2}
DEFAULT_WAIT = timedelta(minutes=15)
STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
PRIVATE_REPLY_WINDOW = timedelta(days=7)
MESSENGER_TEXT_LIMIT = 2000  # the Send API refuses longer text
USAGE_CEILING = 90  # percent of any quota in the usage headers: bulk reads stop here
MAX_PAGES = 10  # comment pages per post per round; the rest waits for the next round
COMMENT_PAGE_SIZE = 100
READ_LAG = timedelta(minutes=5)  # Graph may show a new comment a little late: overlap
COMMENT_FIELDS = "id,message,created_time,from,parent{id},attachment,message_tags"
USAGE_HEADERS = ("X-App-Usage", "X-Page-Usage", "X-Business-Use-Case-Usage")
USAGE_FIELDS = ("call_count", "total_cputime", "total_time")


class UnknownMetric(PermanentError):
    """Graph refused an insights metric name (code 100): Meta renamed or retired it."""


@dataclass(frozen=True)
class Usage:
    """What Meta's usage headers say: the fullest quota, and when access returns."""

    percent: int = 0
    regain_minutes: int = 0


@dataclass(frozen=True)
class MetricValue:
    metric: str  # the Graph name
    value: float
    end_time: datetime | None = None  # day metrics: the end of the day they cover


@dataclass(frozen=True)
class Insights:
    values: list[MetricValue] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # metrics Graph no longer knows


class _Graph(facebook.GraphAPI):  # type: ignore[misc]  # facebook-sdk is untyped
    """facebook-sdk's GraphAPI, with the page token connected in the console (``stored``)
    taking the place of the environment's whenever one is stored: read on every request, so
    a reconnected token is used at once."""

    def __init__(self, stored: Callable[[], str | None], **kwargs: Any) -> None:
        self._stored = stored
        super().__init__(**kwargs)

    @property
    def access_token(self) -> str | None:
        return self._stored() or self._env_token

    @access_token.setter
    def access_token(self, value: str | None) -> None:
        self._env_token = value


class _RecordingSession(requests.Session):
    """Keeps each thread's last response, so the usage headers are readable after an error.

    The worker polls, sends and reads insights from several threads through one channel,
    so one thread must never read another's headers.
    """

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    @property
    def last(self) -> requests.Response | None:
        response: requests.Response | None = getattr(self._local, "response", None)
        return response

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        self._local.response = None  # a connection error must not leave old headers
        response = super().request(*args, **kwargs)
        self._local.response = response
        return response


def _kind(value: str | None) -> AttachmentKind:
    return {
        "image": AttachmentKind.IMAGE,
        "video": AttachmentKind.VIDEO,
        "audio": AttachmentKind.AUDIO,
    }.get(value or "", AttachmentKind.FILE)


def _graph_time(value: str) -> datetime:
    """Graph writes times as ``2026-11-21T19:05:44+0000``."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)


def _epoch(value: Any) -> int | None:
    try:
        return int(_graph_time(value).timestamp()) if isinstance(value, str) else None
    except ValueError:
        return None


def _object_id(post_id: str) -> str:
    """``<page-id>_<post>`` -> ``<post>``: enough to tell the page's posts apart, and short."""
    return post_id.rsplit("_", 1)[-1]


def _midnight(day: date) -> int:
    return int(datetime.combine(day, time(), tzinfo=UTC).timestamp())


def usage_from(headers: Any) -> Usage:
    """Read X-App-Usage (flat percentages) and X-Business-Use-Case-Usage (per object, with
    ``estimated_time_to_regain_access`` in minutes); a malformed header is ignored."""
    percent = minutes = 0
    for name in USAGE_HEADERS:
        raw = headers.get(name) if headers is not None else None
        if not raw:
            continue
        try:
            parsed = json.loads(raw)
            entries = (
                [item for items in parsed.values() for item in items]
                if name == "X-Business-Use-Case-Usage"
                else [parsed]
            )
            for entry in entries:
                percent = max(percent, *(int(entry.get(k, 0)) for k in USAGE_FIELDS))
                minutes = max(minutes, int(entry.get("estimated_time_to_regain_access", 0)))
        except (ValueError, TypeError, AttributeError):
            log.warning("facebook: unreadable %s header ignored", name)
    return Usage(percent=percent, regain_minutes=minutes)


def _next_args(paging: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    """The arguments for the page after this one, or None on the last page."""
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    after = (paging.get("cursors") or {}).get("after")
    if after:
        return {**args, "after": after}
    query = dict(parse_qsl(urlsplit(str(paging["next"])).query))
    query.pop("access_token", None)  # facebook-sdk adds ours; never keep one from a URL
    return query or None


@dataclass
class _PollState:
    """The polling cursor: a time per watched post, and a floor for posts new to the list."""

    floor: int
    posts: dict[str, int]

    @classmethod
    def load(cls, cursor: str | None, *, default_floor: int) -> _PollState:
        try:
            data = json.loads(cursor) if cursor else {}
            posts = {str(k): int(v) for k, v in data.get("posts", {}).items()}
            return cls(floor=int(data.get("floor", default_floor)), posts=posts)
        except (ValueError, TypeError, AttributeError):
            log.warning("facebook: unreadable poll cursor replaced; reading the last day again")
            return cls(floor=default_floor, posts={})

    def dump(self) -> str:
        return json.dumps({"floor": self.floor, "posts": self.posts}, separators=(",", ":"))


@dataclass
class _Round:
    messages: list[InboundMessage] = field(default_factory=list)
    failures: list[Undeliverable] = field(default_factory=list)
    stopped: ChannelError | None = None


class FacebookChannel(BaseChannel):
    name: ClassVar[str] = "facebook"
    capabilities: ClassVar[Capabilities] = PLATFORM_CAPABILITIES["facebook"]

    def __init__(
        self,
        settings: FacebookSettings,
        *,
        clock: Clock | None = None,
        stored_token: Callable[[], str | None] | None = None,
    ) -> None:
        """``stored_token``: the page token connected in the console, if any
        (``bot.credentials.StoredToken``); the environment's serves when it has none."""
        if settings.page_id is None:
            raise ConfigError("facebook.page_id is not set")

        def secret(name: str) -> str:
            value = getattr(settings, name)
            return value.get_secret_value() if value is not None else ""

        self.settings = settings
        self.page_id = settings.page_id
        self.version = settings.graph_version
        self.clock: Clock = clock or SystemClock()
        self._session = _RecordingSession()
        self.graph = _Graph(
            stored_token or (lambda: None),
            access_token=secret("page_access_token"),
            timeout=TIMEOUT,
            session=self._session,
        )
        self._app_secret = secret("app_secret")
        self._verify_token = secret("verify_token")

    # -- calls ---------------------------------------------------------------------------
    def _call(
        self,
        path: str,
        *,
        args: dict[str, Any] | None = None,
        post_args: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        method: str | None = None,
        idempotent: bool = False,
    ) -> dict[str, Any]:
        """The one place Graph errors become the bot's typed errors."""
        try:
            result = self.graph.request(
                f"{self.version}/{path}",
                args=args,
                post_args=post_args,
                files=files,
                method=method,
            )
        except facebook.GraphAPIError as exc:
            raise self._typed(exc) from exc
        except requests.ReadTimeout as exc:
            if post_args is not None and not idempotent:  # it may have arrived: sending
                raise PermanentError(  # again could double it
                    "Facebook did not answer after the request was sent; check the page "
                    "before resending",
                    channel=self.name,
                ) from exc
            raise TransientError("Facebook did not answer in time", channel=self.name) from exc
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientError(
                f"Facebook unreachable: {type(exc).__name__}", channel=self.name
            ) from exc
        except (KeyError, ValueError) as exc:  # no content type, or a body that is not JSON
            raise TransientError(
                "Facebook returned an unreadable response", channel=self.name
            ) from exc
        return result if isinstance(result, dict) else {}

    def _typed(self, exc: facebook.GraphAPIError) -> ChannelError:
        code = exc.code if isinstance(exc.code, int) else None
        if code is None and isinstance(exc.result, str):  # e.g. an HTML 502 page
            return TransientError(f"Facebook error: {exc.result}", channel=self.name)
        message = f"Facebook error {code}: {exc.message}"
        if code in RATE_LIMIT_CODES:
            return RateLimited(message, retry_at=self._regain_access(), channel=self.name)
        if code == 190:
            return AuthError(
                f"the page token has expired or was revoked ({exc.message}); "
                "reconnect the Facebook page",
                channel=self.name,
            )
        if code in TRANSIENT_CODES:
            return TransientError(message, channel=self.name)
        if code == 100 and "insights metric" in str(exc.message).lower():
            return UnknownMetric(message, channel=self.name)
        return PermanentError(message, channel=self.name)

    def usage(self) -> Usage:
        """This thread's last response's usage headers."""
        last = self._session.last
        return usage_from(last.headers if last is not None else None)

    def _regain_access(self) -> datetime:
        """When Meta says access returns (X-Business-Use-Case-Usage), else a safe wait."""
        minutes = self.usage().regain_minutes
        return self.clock.now() + (timedelta(minutes=minutes) if minutes > 0 else DEFAULT_WAIT)

    def pause_until(self) -> datetime | None:
        """When bulk reads should resume, if the last response showed a quota nearly used."""
        usage = self.usage()
        return self._regain_access() if usage.percent >= USAGE_CEILING else None

    def _paused(self) -> RateLimited | None:
        resume = self.pause_until()
        if resume is None:
            return None
        return RateLimited(
            f"Facebook usage at {self.usage().percent}% of a quota; reading paused",
            retry_at=resume,
            channel=self.name,
        )

    def check(self) -> ChannelStatus:
        try:
            page = self._call(self.page_id, args={"fields": "id,name"})
        except AuthError as exc:
            return ChannelStatus(Health.NEEDS_AUTH, str(exc))
        except ChannelError as exc:
            return ChannelStatus(Health.DEGRADED, str(exc))
        return ChannelStatus(Health.OK, str(page.get("name", self.page_id)))

    # -- polling -------------------------------------------------------------------------
    def fetch(self, cursor: str | None) -> Batch:
        """New comments on the page's recent posts since the cursor (the webhook's fallback).

        Each post keeps its own time, so a round cut short (page limit, usage ceiling, a rate
        limit) resumes where each post got to. A post's time moves to the start of the round
        less ``READ_LAG`` once all its pages were read; later comments are read twice at
        worst, and de-duplication absorbs that.
        """
        now = self.clock.now()
        lookback = timedelta(hours=self.settings.poll_lookback_hours)
        state = _PollState.load(cursor, default_floor=int((now - lookback).timestamp()))
        watermark = int((now - READ_LAG).timestamp())
        posts = self._call(
            f"{self.page_id}/posts",
            args={"fields": "id,created_time", "limit": self.settings.poll_recent_posts},
        ).get("data")
        if not isinstance(posts, list):
            posts = []
        current = _Round()
        watched: dict[str, int] = {}
        complete = True
        for post in posts[: self.settings.poll_recent_posts]:
            post_id = post.get("id") if isinstance(post, dict) else None
            if not isinstance(post_id, str) or not post_id:
                continue
            key = _object_id(post_id)
            since = state.posts.get(key, state.floor)
            if current.stopped is None:
                reached, done = self._read_comments(post_id, since, watermark, current)
                complete = complete and done
                since = max(since, reached)
            watched[key] = since
        complete = complete and current.stopped is None
        if current.stopped is not None and not current.messages and not current.failures:
            raise current.stopped  # nothing read: let the caller wait as Meta asked
        if current.stopped is not None:
            log.warning("facebook: polling round cut short: %s", current.stopped)
        new_state = _PollState(floor=watermark if complete else state.floor, posts=watched)
        return Batch(
            messages=current.messages,
            failures=current.failures,
            cursor=new_state.dump(),
            exhausted=complete,
        )

    def _read_comments(
        self, post_id: str, since: int, watermark: int, current: _Round
    ) -> tuple[int, bool]:
        """One post's comments since ``since``: (the time to resume from, all read?)."""
        args: dict[str, Any] = {
            "filter": "stream",
            "order": "chronological",
            "since": since,
            "fields": COMMENT_FIELDS,
            "limit": COMMENT_PAGE_SIZE,
        }
        reached = since
        for _ in range(MAX_PAGES):
            current.stopped = self._paused()
            if current.stopped is not None:
                return reached, False
            try:
                page = self._call(f"{post_id}/comments", args=dict(args))
            except (RateLimited, TransientError) as exc:
                current.stopped = exc
                return reached, False
            except PermanentError as exc:  # e.g. the post was deleted since it was listed
                log.warning("facebook: comments of post %s not readable: %s", post_id, exc)
                return since, True
            for comment in listed(page, "data"):
                created = _epoch(comment.get("created_time")) if isinstance(comment, dict) else None
                if created is not None and created < since:
                    continue  # Graph's own ``since`` should have left it out
                raw = {"post_id": post_id, **comment} if isinstance(comment, dict) else comment
                self._collect(
                    self._polled(post_id, comment), raw, current.messages, current.failures, "poll"
                )
                reached = max(reached, created or reached)
            following = _next_args(page.get("paging"), args)
            if following is None:
                return max(since, watermark), True
            args = following
        return reached, False

    def _polled(self, post_id: str, comment: Any) -> Callable[[], InboundMessage | None]:
        def make() -> InboundMessage | None:
            author = comment.get("from")
            if author is not None and author["id"] == self.page_id:
                return None  # the page's own replies
            comment_id = comment["id"]
            parent = (comment.get("parent") or {}).get("id")
            return InboundMessage(
                channel=self.name,
                external_id=comment_id,
                conversation_id=post_id,
                author=Author(id=author["id"], name=author.get("name"))
                if author is not None
                else Author(id=f"unknown:{comment_id}"),  # Graph withheld who wrote it
                text=comment.get("message", ""),
                private=False,
                addressed_to_account=True,
                received_at=_graph_time(comment["created_time"]),
                in_reply_to=parent if parent and parent != post_id else None,
                attachments=_comment_attachments(comment.get("attachment")),
                raw={"post_id": post_id, **comment},
            )

        return make

    @parser("poll")
    def parse_polled(self, payload: bytes) -> Batch:
        """Re-read one dead-lettered polled comment (for `deadletter retry`)."""
        try:
            item = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            return Batch(failures=[Undeliverable(payload, f"not JSON: {exc}", "poll")])
        if not isinstance(item, dict) or not isinstance(item.get("post_id"), str):
            return Batch(
                failures=[Undeliverable(payload, "not a polled comment with its post_id", "poll")]
            )
        messages: list[InboundMessage] = []
        failures: list[Undeliverable] = []
        self._collect(self._polled(item["post_id"], item), item, messages, failures, "poll")
        return Batch(messages=messages, failures=failures)

    # -- parsing (pure) ------------------------------------------------------------------
    @parser("webhook")
    def parse(self, payload: bytes) -> Batch:
        """A webhook body, already signature-checked."""
        try:
            body = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as exc:
            return Batch(
                failures=[Undeliverable(payload, f"webhook body is not JSON: {exc}", "webhook")]
            )
        if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
            return Batch(
                failures=[Undeliverable(payload, "webhook body has no entry list", "webhook")]
            )
        messages: list[InboundMessage] = []
        failures: list[Undeliverable] = []
        for entry in body["entry"]:
            for event in listed(entry, "messaging"):
                self._collect(self._messaging(event), event, messages, failures)
            for change in listed(entry, "changes"):
                self._collect(self._comment(change), change, messages, failures)
        return Batch(messages=messages, failures=failures)

    @staticmethod
    def _collect(
        make: Callable[[], InboundMessage | None],
        raw: Any,
        messages: list[InboundMessage],
        failures: list[Undeliverable],
        origin: str = "webhook",
    ) -> None:
        try:
            message = make()
        except Exception as exc:  # anything wrong with one item dead-letters that item
            failures.append(
                Undeliverable(
                    json.dumps(raw).encode(), f"{origin} event not understood: {exc!r}", origin
                )
            )
            return
        if message is not None:
            messages.append(message)

    def _messaging(self, event: dict[str, Any]) -> Callable[[], InboundMessage | None]:
        def make() -> InboundMessage | None:
            sender = event["sender"]["id"]
            if sender == self.page_id:
                return None  # our own messages come back as echoes
            at = datetime.fromtimestamp(int(event["timestamp"]) / 1000, UTC)
            if "message" in event:
                message = event["message"]
                if message.get("is_echo"):
                    return None
                attachments = tuple(
                    Attachment(kind=_kind(a.get("type")), url=(a.get("payload") or {}).get("url"))
                    for a in message.get("attachments", [])
                )
                return InboundMessage(
                    channel=self.name,
                    external_id=message["mid"],
                    conversation_id=sender,
                    author=Author(id=sender),
                    text=message.get("text", ""),
                    private=True,
                    received_at=at,
                    attachments=attachments,
                    in_reply_to=(message.get("reply_to") or {}).get("mid"),
                    raw=event,
                )
            if "postback" in event:
                postback = event["postback"]
                return InboundMessage(
                    channel=self.name,
                    external_id=postback.get("mid") or f"postback-{sender}-{event['timestamp']}",
                    conversation_id=sender,
                    author=Author(id=sender),
                    text=postback.get("title") or postback.get("payload", ""),
                    private=True,
                    received_at=at,
                    raw=event,
                )
            return None  # delivery and read receipts, reactions...

        return make

    def _comment(self, change: dict[str, Any]) -> Callable[[], InboundMessage | None]:
        def make() -> InboundMessage | None:
            value = change["value"]
            if change.get("field") != "feed" or value.get("item") != "comment":
                return None
            if value.get("verb") != "add" or value["from"]["id"] == self.page_id:
                return None
            created = value["created_time"]
            at = (
                datetime.fromtimestamp(int(created), UTC)
                if isinstance(created, int)
                else _graph_time(created)
            )
            parent = value.get("parent_id")
            attachments = tuple(
                Attachment(kind=kind, url=value[key])
                for key, kind in (("photo", AttachmentKind.IMAGE), ("video", AttachmentKind.VIDEO))
                if value.get(key)
            )
            return InboundMessage(
                channel=self.name,
                external_id=value["comment_id"],  # the same id Graph gives when polled
                conversation_id=value["post_id"],
                author=Author(id=value["from"]["id"], name=value["from"].get("name")),
                text=value.get("message", ""),
                private=False,
                addressed_to_account=True,
                received_at=at,
                in_reply_to=parent if parent and parent != value["post_id"] else None,
                attachments=attachments,
                raw=change,
            )

        return make

    # -- sending -------------------------------------------------------------------------
    def reply(self, reply: OutboundReply) -> DeliveryResult:
        is_comment = reply.conversation_id != reply.recipient_id  # comments live on a post
        if not reply.private and is_comment:
            result = self._call(
                f"{reply.in_reply_to_external_id}/comments", post_args={"message": reply.text}
            )
            return self._delivered(result.get("id"))
        if len(reply.text) > MESSENGER_TEXT_LIMIT:
            raise PermanentError(
                f"Messenger text is limited to {MESSENGER_TEXT_LIMIT} characters "
                f"({len(reply.text)} given); shorten the reply",
                channel=self.name,
            )
        body: dict[str, Any]
        if is_comment:  # a Private Reply to a public comment: once, within 7 days
            self._private_reply_window(reply)
            body = {
                "recipient": {"comment_id": reply.in_reply_to_external_id},
                "message": {"text": reply.text},
            }
        else:
            body = {
                "recipient": {"id": reply.recipient_id},
                "message": {"text": reply.text},
                **self._messaging_type(reply),
            }
        result = self._call(
            f"{self.page_id}/messages",
            post_args={k: json.dumps(v) if isinstance(v, dict) else v for k, v in body.items()},
        )
        return self._delivered(result.get("message_id"))

    def _private_reply_window(self, reply: OutboundReply) -> None:
        last = reply.user_last_message_at
        if last is not None and self.clock.now() - last > PRIVATE_REPLY_WINDOW:
            raise PermanentError(
                "a Private Reply must be sent within 7 days of the comment; answer publicly "
                "or ask the person to message the page",
                channel=self.name,
            )

    def _messaging_type(self, reply: OutboundReply) -> dict[str, str]:
        last = reply.user_last_message_at
        age = self.clock.now() - last if last is not None else None
        if age is not None and age <= STANDARD_WINDOW:
            return {"messaging_type": "RESPONSE"}
        if reply.by_human and age is not None and age <= HUMAN_AGENT_WINDOW:
            return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        raise PermanentError(
            "Messenger only allows replies within 24 hours of the person's last message "
            "(7 days for an officer's own reply); ask them to message again or use another "
            "channel",
            channel=self.name,
        )

    def publish(self, post: OutboundPost) -> DeliveryResult:
        """A link post to the feed, or a photo post (one photo; a link goes in its text)."""
        if not post.media_paths:
            args = {"message": post.text, **({"link": post.link} if post.link else {})}
            result = self._call(f"{self.page_id}/feed", post_args=args)
            return self._delivered(result.get("id"))
        if len(post.media_paths) > 1:
            raise PermanentError(
                "a Facebook page post here carries one photo; split the post", channel=self.name
            )
        text = post.text
        if post.link and post.link not in text:
            text = f"{text}\n{post.link}"
        path = Path(post.media_paths[0])
        try:
            with path.open("rb") as photo:
                result = self._call(
                    f"{self.page_id}/photos",
                    post_args={"message": text, "published": "true"},
                    files={"source": (path.name, photo)},
                )
        except OSError as exc:
            raise PermanentError(
                f"the photo {path.name} could not be read: {exc.strerror}", channel=self.name
            ) from exc
        return self._delivered(result.get("post_id") or result.get("id"))

    def hide_comment(self, comment_id: str, *, hidden: bool = True) -> None:
        """Hide (or show again) a comment: its author and friends still see it, others not.

        Hiding twice is harmless, so a timeout is worth retrying, unlike a send."""
        result = self._call(
            comment_id,
            post_args={"is_hidden": "true" if hidden else "false"},
            idempotent=True,
        )
        if result.get("success") is not True:
            raise PermanentError(
                "Facebook did not confirm the comment's visibility changed; check the page",
                channel=self.name,
            )

    def recent_posts(self, since: datetime) -> list[PublishedPost]:
        """The page's own posts since ``since`` (one page of results is plenty for minutes)."""
        data = self._call(
            f"{self.page_id}/posts",
            args={
                "fields": "id,message,created_time",
                "since": int(since.timestamp()),
                "limit": 100,
            },
        ).get("data")
        posts = []
        for item in data if isinstance(data, list) else []:
            try:
                posts.append(
                    PublishedPost(
                        external_id=str(item["id"]),
                        text=str(item.get("message", "")),
                        published_at=_graph_time(item["created_time"]),
                    )
                )
            except (KeyError, TypeError, ValueError):
                log.warning("facebook: skipped an unreadable post in the page's feed")
        return [p for p in posts if p.published_at >= since]

    def _delivered(self, external_id: Any) -> DeliveryResult:
        if not external_id:
            raise PermanentError(  # accepted, so it may be out there: never blindly resend
                "Facebook accepted the request but returned no id; check the page before resending",
                channel=self.name,
            )
        return DeliveryResult(external_id=str(external_id), delivered_at=self.clock.now())

    # -- insights ------------------------------------------------------------------------
    def page_insights(self, metrics: Sequence[str], *, since: date, until: date) -> Insights:
        """Daily page metrics for the days from ``since`` up to the day before ``until``."""
        args = {"period": "day", "since": _midnight(since), "until": _midnight(until)}
        return self._insights(f"{self.page_id}/insights", metrics, args)

    def post_insights(self, post_id: str, metrics: Sequence[str]) -> Insights:
        """A post's lifetime metrics, as they stand now."""
        return self._insights(f"{post_id}/insights", metrics, {})

    def _insights(self, path: str, metrics: Sequence[str], args: dict[str, Any]) -> Insights:
        """All metrics in one call; if Graph refuses a name, each alone, skipping the bad."""
        if not metrics:
            return Insights()
        try:
            return Insights(values=self._metric_values(path, metrics, args))
        except UnknownMetric:
            if len(metrics) == 1:
                self._warn_unknown(metrics[0])
                return Insights(skipped=[metrics[0]])
        values: list[MetricValue] = []
        skipped: list[str] = []
        for metric in metrics:
            try:
                values += self._metric_values(path, [metric], args)
            except UnknownMetric:
                self._warn_unknown(metric)
                skipped.append(metric)
        return Insights(values=values, skipped=skipped)

    def _metric_values(
        self, path: str, metrics: Sequence[str], args: dict[str, Any]
    ) -> list[MetricValue]:
        result = self._call(path, args={**args, "metric": ",".join(metrics)})
        values: list[MetricValue] = []
        for item in result.get("data", []):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or name not in metrics:
                continue
            for point in item.get("values", []):
                number = _number(point.get("value")) if isinstance(point, dict) else None
                if number is None:
                    log.warning("facebook: insights %s has an unreadable value; skipped", name)
                    continue
                end = point.get("end_time")
                values.append(
                    MetricValue(
                        metric=name,
                        value=number,
                        end_time=_graph_time(end) if isinstance(end, str) else None,
                    )
                )
        return values

    @staticmethod
    def _warn_unknown(metric: str) -> None:
        log.warning(
            "facebook: Graph no longer knows the insights metric %r (renamed or retired by "
            "Meta); skipped. Rename or remove it under facebook.page_metrics/post_metrics",
            metric,
        )

    # -- webhooks ------------------------------------------------------------------------
    def router(self, on_payload: Callable[[str, bytes], None]) -> APIRouter:
        """``on_payload(channel, body)`` must store the body before returning."""
        if not self._app_secret or not self._verify_token:
            raise ConfigError("facebook.app_secret and facebook.verify_token are needed")
        routes = APIRouter(prefix="/webhooks/facebook")

        @routes.get("")
        def verify(request: Request) -> Response:
            query = request.query_params
            token = query.get("hub.verify_token", "")
            if query.get("hub.mode") == "subscribe" and hmac.compare_digest(
                token.encode(), self._verify_token.encode()
            ):
                return PlainTextResponse(query.get("hub.challenge", ""))
            return Response("verification failed", status_code=403)

        @routes.post("")
        async def events(request: Request) -> Response:
            body = await read_capped(request, MAX_WEBHOOK_BYTES)
            if body is None:
                return Response("payload too large", status_code=413)
            expected = (
                "sha256=" + hmac.new(self._app_secret.encode(), body, hashlib.sha256).hexdigest()
            )
            given = request.headers.get("x-hub-signature-256", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return Response("bad signature", status_code=403)
            await run_in_threadpool(on_payload, self.name, body)  # the database is blocking
            return Response(status_code=200)

        return routes


def _number(value: Any) -> float | None:
    """A metric value: a number, or a breakdown such as reactions by type, summed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
    ):
        return float(sum(value.values()))
    return None


def _comment_attachments(attachment: Any) -> tuple[Attachment, ...]:
    """A photo or video on a polled comment (stickers and link previews are not evidence)."""
    if not isinstance(attachment, dict):
        return ()
    kind = str(attachment.get("type", ""))
    media = attachment.get("media") or {}
    if kind == "photo":
        url = (media.get("image") or {}).get("src") or attachment.get("url")
        return (Attachment(kind=AttachmentKind.IMAGE, url=url),)
    if "video" in kind:
        return (
            Attachment(kind=AttachmentKind.VIDEO, url=media.get("source") or attachment.get("url")),
        )
    return ()
