"""X (Twitter) API v2 through tweepy's Client: mentions and DMs in, replies and posts out.

- Polling: mentions since the last seen id (following ``next_token`` pages back to it) and
  DM events newest-first until the last seen event. The cursor only advances when every page
  was read, so a round cut short is read again and de-duplication absorbs the overlap.
- Webhooks (Account Activity): the CRC challenge and ``x-twitter-webhooks-signature`` are
  checked here, before anything is parsed; a tweet seen by webhook and by poll has the same
  id, so it is one message.
- Media: tweepy has no v2 upload, so photos and videos go through X's chunked upload
  (``/2/media/upload/initialize``, ``/{id}/append``, ``/{id}/finalize``, then ``GET
  /2/media/upload?command=STATUS`` while a video is processed) on tweepy's own session, with
  the same user credentials as every call. The one wait here is that processing, bounded.
- Credentials: the OAuth 2.0 user token an admin connected in the console (read per call,
  so a refreshed one is used at once), else the OAuth 1.0a keys from the environment.
- Cost: every call goes into the ledger (``bot.crud.api_calls``) with its estimated price.
  Once the month's budget is spent, ``publish`` and history backfills stop with
  ``BudgetExceeded``; polling and replies never look at the budget.
- Errors map to ``bot.errors``: 429 -> ``RateLimited`` at ``x-rate-limit-reset``, 401 ->
  ``AuthError``, 5xx, timeouts and unreadable bodies -> ``TransientError``, other 4xx ->
  ``PermanentError``. A send whose answer was lost is ``PermanentError`` ("check before
  resending"), never retried blindly. Nothing sleeps on a rate limit: the caller reschedules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar

import requests
import tweepy
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from bot.clock import SystemClock
from bot.config import TwitterSettings
from bot.crud.api_calls import (
    BillableCall,
    BudgetExceeded,
    CallLedger,
    CostKind,
    MemoryLedger,
    price_micros,
)
from bot.errors import (
    AuthError,
    ChannelError,
    ConfigError,
    PermanentError,
    RateLimited,
    TransientError,
)
from bot.media.errors import MediaRefused
from bot.media.sniff import SNIFF_BYTES, MediaFormat, sniff
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
from channels.limits import TWEET_LIMIT, has_url, parse_tweet
from channels.registry import PLATFORM_CAPABILITIES

log = logging.getLogger(__name__)
API_HOST = "https://api.twitter.com"  # the host tweepy's Client calls
TIMEOUT = (5.0, 30.0)  # connect, read: tweepy sets none, and a hung call would stall a worker
MAX_PAGES = 10
MAX_WEBHOOK_BYTES = 2 * 1024 * 1024
# Media limits from X's upload guide: 4 photos or 1 video per post, chunks of at most 5 MB.
CHUNK_BYTES = 4 * 1024 * 1024
MAX_PHOTOS = 4
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_VIDEO_BYTES = 512 * 1024 * 1024
MAX_PROCESSING_SECONDS = 300.0  # a video still processing after this is retried later
WRITES = frozenset({CostKind.WRITE, CostKind.WRITE_WITH_URL})
TWEET_FIELDS = [
    "created_at",
    "conversation_id",
    "in_reply_to_user_id",
    "public_metrics",
    "attachments",
    "author_id",
    "referenced_tweets",
]
MEDIA_FIELDS = ["url", "type", "preview_image_url", "variants"]
DM_FIELDS = [
    "id",
    "text",
    "event_type",
    "dm_conversation_id",
    "created_at",
    "sender_id",
    "attachments",
    "participant_ids",
]


def _includes(page: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The users and media a v2 response expanded, by id and by media key."""
    includes = page.get("includes", {})
    users = {u["id"]: u for u in includes.get("users", []) if "id" in u}
    media = {m["media_key"]: m for m in includes.get("media", []) if "media_key" in m}
    return users, media


def _handle(user: dict[str, Any]) -> str | None:
    return f"@{user['username']}" if user.get("username") else None


class _Client(tweepy.Client):  # type: ignore[misc]  # tweepy is untyped
    """tweepy's Client, with the OAuth 2.0 user token an admin connected in the console
    (``stored_token``) taking the place of the environment's keys whenever one is stored.

    The token is read on every call, so a refreshed or reconnected one is used at once;
    it travels as this call's bearer token (per thread: the worker calls from several).
    """

    def __init__(self, stored_token: Callable[[], str | None], **kwargs: Any) -> None:
        self._stored_token = stored_token
        self._this_call = threading.local()
        super().__init__(**kwargs)

    @property
    def bearer_token(self) -> str | None:
        token: str | None = getattr(self._this_call, "token", None)
        return token or self._env_bearer_token

    @bearer_token.setter
    def bearer_token(self, value: str | None) -> None:
        self._env_bearer_token = value

    def request(
        self,
        method: str,
        route: str,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        user_auth: bool = False,
    ) -> Any:
        token = self._stored_token()
        if token is None:
            return super().request(method, route, params, json, user_auth)
        self._this_call.token = token
        try:  # OAuth 2.0 user context: the bearer token, never OAuth 1.0a signing
            return super().request(method, route, params, json, False)
        finally:
            self._this_call.token = None


class _TimeoutSession(requests.Session):
    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(*args, **kwargs)


@dataclass(frozen=True)
class _Bill:
    """How the ledger files a call: its route (ids as ``:id``), price and reason."""

    method: str
    endpoint: str
    kind: CostKind
    purpose: str


def _engagement(tweet: dict[str, Any]) -> dict[str, float]:
    """X's counters mapped onto the engagement names every channel reports under."""
    public = tweet.get("public_metrics") or {}
    private = tweet.get("non_public_metrics") or {}
    figures = {
        "views": private.get("impression_count", public.get("impression_count")),
        "reactions": public.get("like_count"),
        "replies": public.get("reply_count"),
        "shares": (public.get("retweet_count") or 0) + (public.get("quote_count") or 0),
        "link_clicks": private.get("url_link_clicks"),
    }
    return {name: float(value) for name, value in figures.items() if isinstance(value, int)}


def _units(kind: CostKind, body: dict[str, Any]) -> int:
    """Reads are billed per item returned, everything else per request."""
    if kind not in (CostKind.POST_READ, CostKind.USER_READ, CostKind.DM_READ):
        return 1
    data = body.get("data")
    return len(data) if isinstance(data, list) else int(isinstance(data, dict))


def _raise_for_status(response: requests.Response) -> None:
    """The statuses as tweepy's Client raises them, so ``_call`` maps every call alike."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        reset = response.headers.get("x-rate-limit-reset", "")
        raise tweepy.TooManyRequests(response, reset_time=int(reset) if reset.isdigit() else None)
    by_status: dict[int, type[tweepy.HTTPException]] = {
        400: tweepy.BadRequest,
        401: tweepy.Unauthorized,
        403: tweepy.Forbidden,
        404: tweepy.NotFound,
    }
    if status >= 500:
        raise tweepy.TwitterServerError(response)
    raise by_status.get(status, tweepy.HTTPException)(response)


def _kind(media_type: str | None) -> AttachmentKind:
    return {
        "photo": AttachmentKind.IMAGE,
        "video": AttachmentKind.VIDEO,
        "animated_gif": AttachmentKind.VIDEO,
    }.get(media_type or "", AttachmentKind.FILE)


def _best_url(media: dict[str, Any]) -> str | None:
    variants = [v for v in media.get("variants", []) if v.get("content_type") == "video/mp4"]
    if variants:
        return str(max(variants, key=lambda v: v.get("bit_rate", 0))["url"])
    url = media.get("url") or media.get("preview_image_url")
    return str(url) if url else None


class TwitterChannel(BaseChannel):
    name: ClassVar[str] = "twitter"
    capabilities: ClassVar[Capabilities] = PLATFORM_CAPABILITIES["twitter"]

    def __init__(
        self,
        settings: TwitterSettings,
        *,
        client: tweepy.Client | None = None,
        ledger: CallLedger | None = None,
        sleep: Callable[[float], None] = time.sleep,
        stored_token: Callable[[], str | None] | None = None,
    ) -> None:
        """``ledger``: where calls and their cost are recorded; the app passes the database's
        (``DbLedger``). Without one, calls are kept in memory for this process only.
        ``stored_token``: the OAuth 2.0 user token connected in the console, if any
        (``bot.credentials.StoredToken``); the environment's keys serve when it has none."""
        if settings.user_id is None:
            raise ConfigError("twitter.user_id is not set")
        self.settings = settings
        self.user_id = settings.user_id
        self.ledger: CallLedger = ledger or MemoryLedger(settings.cost, SystemClock())
        self._sleep = sleep

        def secret(name: str) -> str | None:
            value = getattr(settings, name)
            return value.get_secret_value() if value is not None else None

        self._stored_token = stored_token or (lambda: None)
        self.client = client or _Client(
            self._stored_token,
            bearer_token=secret("bearer_token"),
            consumer_key=secret("consumer_key"),
            consumer_secret=secret("consumer_secret"),
            access_token=secret("access_token"),
            access_token_secret=secret("access_token_secret"),
            return_type=dict,
        )
        self.client.session = _TimeoutSession()
        self._consumer_secret = secret("consumer_secret")

    @classmethod
    def from_settings(
        cls, settings: TwitterSettings, *, ledger: CallLedger | None = None
    ) -> TwitterChannel:
        missing = settings.missing()
        if missing:
            raise ConfigError(f"twitter is missing {', '.join(missing)}")
        return cls(settings, ledger=ledger)

    # -- calls ---------------------------------------------------------------------------
    def _call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        bill: _Bill,
        sending: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The one place API errors become the bot's typed errors and calls reach the ledger.

        A refused call (an HTTP error) is recorded at no cost. A send that timed out after it
        went, or was answered unreadably, may well have been carried out: it is recorded at
        full cost and reported as ``PermanentError``, never retried blindly."""
        try:
            result = fn(*args, **kwargs)
        except tweepy.HTTPException as exc:
            self._record(bill, status=exc.response.status_code, units=0)
            raise self._refused(exc) from exc
        except (requests.RequestException, ValueError) as exc:
            arrived = isinstance(exc, requests.ReadTimeout | ValueError)  # or may have
            self._record(bill, status=None, units=int(arrived and bill.kind in WRITES))
            raise self._unanswered(exc, sending=sending and arrived) from exc
        body = result if isinstance(result, dict) else {}
        self._record(bill, status=200, units=_units(bill.kind, body))
        return body

    def _refused(self, exc: tweepy.HTTPException) -> ChannelError:
        status = exc.response.status_code
        if isinstance(exc, tweepy.TooManyRequests):
            reset = exc.response.headers.get("x-rate-limit-reset")
            retry_at = (
                datetime.fromtimestamp(int(reset), UTC)
                if reset and reset.isdigit()
                else datetime.now(UTC)
            )
            return RateLimited("X rate limit reached", retry_at=retry_at, channel=self.name)
        if isinstance(exc, tweepy.Unauthorized):
            return AuthError(
                "X rejected the credentials (401): reconnect the account", channel=self.name
            )
        if isinstance(exc, tweepy.TwitterServerError):
            return TransientError(f"X server error {status}", channel=self.name)
        return PermanentError(  # 400, 403, 404 and other 4xx
            f"X refused the request ({status}): "
            f"{'; '.join(exc.api_messages) or exc.response.reason}",
            channel=self.name,
        )

    def _unanswered(self, exc: Exception, *, sending: bool) -> ChannelError:
        if sending:  # it arrived, or may have: sending again could double it
            return PermanentError(
                "X's answer to the request was lost or unreadable after it was sent; "
                "check before resending",
                channel=self.name,
            )
        if isinstance(exc, requests.Timeout):
            return TransientError("X did not answer in time", channel=self.name)
        if isinstance(exc, requests.ConnectionError):
            return TransientError(f"X unreachable: {type(exc).__name__}", channel=self.name)
        return TransientError("X returned an unreadable body", channel=self.name)

    def _record(self, bill: _Bill, *, status: int | None, units: int) -> None:
        self.ledger.record(
            BillableCall(
                channel=self.name,
                method=bill.method,
                endpoint=bill.endpoint,
                kind=bill.kind,
                units=units,
                cost_micros=price_micros(self.settings.cost, bill.kind, units),
                purpose=bill.purpose,
                status=status,
            )
        )

    def check(self) -> ChannelStatus:
        try:
            me = self._call(
                self.client.get_me,
                user_auth=True,
                bill=_Bill("GET", "/2/users/me", CostKind.USER_READ, "check"),
            )
        except AuthError as exc:
            return ChannelStatus(Health.NEEDS_AUTH, str(exc))
        except ChannelError as exc:
            return ChannelStatus(Health.DEGRADED, str(exc))
        return ChannelStatus(Health.OK, f"@{me.get('data', {}).get('username', '?')}")

    # -- metrics -------------------------------------------------------------------------
    def follower_count(self) -> int:
        """The account's followers now (reports store it as a daily snapshot)."""
        me = self._call(
            self.client.get_me,
            user_auth=True,
            user_fields=["public_metrics"],
            bill=_Bill("GET", "/2/users/me", CostKind.USER_READ, "metrics"),
        )
        count = me.get("data", {}).get("public_metrics", {}).get("followers_count")
        if not isinstance(count, int):
            raise TransientError("X returned no follower count", channel=self.name)
        return count

    def post_metrics(self, tweet_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Lifetime totals of the account's own tweets, under the names reports use.

        Impressions and link clicks are private metrics, given only to the account's own
        user token and only for 30 days; where X refuses them, the public ones still count.
        """
        totals: dict[str, dict[str, float]] = {}
        for start in range(0, len(tweet_ids), 100):
            ids = list(tweet_ids[start : start + 100])
            bill = _Bill("GET", "/2/tweets", CostKind.POST_READ, "metrics")
            try:
                page = self._call(
                    self.client.get_tweets, ids, user_auth=True, bill=bill,
                    tweet_fields=["public_metrics", "non_public_metrics", "organic_metrics"],
                )  # fmt: skip
            except PermanentError:  # e.g. older than 30 days: private metrics refused
                page = self._call(
                    self.client.get_tweets, ids, user_auth=True, bill=bill,
                    tweet_fields=["public_metrics"],
                )  # fmt: skip
            for tweet in page.get("data") or []:
                if isinstance(tweet, dict) and "id" in tweet:
                    totals[str(tweet["id"])] = _engagement(tweet)
        return totals

    # -- polling -------------------------------------------------------------------------
    def fetch(self, cursor: str | None) -> Batch:
        state = json.loads(cursor) if cursor else {}
        mentions, failures, mentions_since, complete = self._mentions(state.get("mentions"))
        dms, dm_failures, dm_newest = self._dms(state.get("dm"))
        new_state = {
            "mentions": mentions_since if complete else state.get("mentions"),
            "dm": dm_newest or state.get("dm"),
        }
        return Batch(
            messages=mentions + dms,
            failures=failures + dm_failures,
            cursor=json.dumps(new_state),
            exhausted=complete,
        )

    def _pages(self, stream: str, position: str | None) -> tuple[int, str]:
        """How many pages to read, and why. Past a saved position it is polling, which never
        stops; with none it reads history, a backfill that a spent budget cuts to one page."""
        if position is not None:
            return MAX_PAGES, "poll"
        budget = self.ledger.budget()
        if budget.reached:
            log.warning(
                "%s; %s: reading only the newest page, no history", budget.describe(), stream
            )
            return 1, "backfill"
        return MAX_PAGES, "backfill"

    def _mentions(
        self, since_id: str | None
    ) -> tuple[list[InboundMessage], list[Undeliverable], str | None, bool]:
        messages: list[InboundMessage] = []
        failures: list[Undeliverable] = []
        newest = since_id
        token = None
        pages, purpose = self._pages("mentions", since_id)
        bill = _Bill("GET", "/2/users/:id/mentions", CostKind.POST_READ, purpose)
        for _ in range(pages):
            page = self._call(
                self.client.get_users_mentions,
                self.user_id,
                since_id=since_id,
                pagination_token=token,
                max_results=100,
                expansions=["author_id", "attachments.media_keys"],
                tweet_fields=TWEET_FIELDS,
                media_fields=MEDIA_FIELDS,
                user_fields=["username", "name"],
                bill=bill,
            )
            batch = self.parse_v2_tweets(page)
            messages += batch.messages
            failures += batch.failures
            page_newest = page.get("meta", {}).get("newest_id")
            if page_newest and (newest is None or int(page_newest) > int(newest)):
                newest = page_newest
            token = page.get("meta", {}).get("next_token")
            if not token:
                return messages, failures, newest, True
        # Out of pages: a cut-short poll is read again next round; a cut-short backfill is
        # done, or the history it skipped would be asked for (and paid for) every round.
        return messages, failures, newest, pages < MAX_PAGES

    def _dms(
        self, last_seen: str | None
    ) -> tuple[list[InboundMessage], list[Undeliverable], str | None]:
        messages: list[InboundMessage] = []
        failures: list[Undeliverable] = []
        newest: str | None = None
        token = None
        pages, purpose = self._pages("DMs", last_seen)
        bill = _Bill("GET", "/2/dm_events", CostKind.DM_READ, purpose)
        for _ in range(pages):
            page = self._call(
                self.client.get_direct_message_events,
                event_types="MessageCreate",
                pagination_token=token,
                max_results=100,
                dm_event_fields=DM_FIELDS,
                expansions=["sender_id", "attachments.media_keys"],
                media_fields=MEDIA_FIELDS,
                user_fields=["username", "name"],
                user_auth=True,
                bill=bill,
            )
            events = page.get("data", [])
            fresh = [e for e in events if last_seen is None or int(e["id"]) > int(last_seen)]
            if events and newest is None:
                newest = max((e["id"] for e in events), key=int)
            batch = self.parse_v2_dms({**page, "data": fresh})
            messages += batch.messages
            failures += batch.failures
            token = page.get("meta", {}).get("next_token")
            if not token or len(fresh) < len(events):
                break
        return messages, failures, newest

    # -- parsing (pure) ------------------------------------------------------------------
    @parser("mentions")
    def parse_v2_tweets(self, page: dict[str, Any]) -> Batch:
        users, media = _includes(page)
        messages, failures = [], []
        for tweet in listed(page, "data"):
            if tweet.get("author_id") == self.user_id:
                continue  # our own replies appear among our mentions
            try:
                user = users.get(tweet["author_id"], {})
                replied = next(
                    (
                        r["id"]
                        for r in tweet.get("referenced_tweets", [])
                        if r.get("type") == "replied_to"
                    ),
                    None,
                )
                messages.append(
                    InboundMessage(
                        channel=self.name,
                        external_id=tweet["id"],
                        conversation_id=tweet.get("conversation_id") or tweet["id"],
                        author=Author(
                            id=tweet["author_id"],
                            handle=_handle(user),
                            name=user.get("name"),
                        ),
                        text=tweet["text"],
                        private=False,
                        addressed_to_account=True,
                        received_at=datetime.fromisoformat(
                            tweet["created_at"].replace("Z", "+00:00")
                        ),
                        attachments=tuple(
                            self._attachments(
                                tweet.get("attachments", {}).get("media_keys", []), media
                            )
                        ),
                        in_reply_to=replied,
                        raw=tweet,
                    )
                )
            except Exception as exc:  # anything wrong with one item dead-letters that item
                failures.append(
                    Undeliverable(
                        json.dumps(tweet).encode(), f"tweet not understood: {exc!r}", "mentions"
                    )
                )
        return Batch(messages=messages, failures=failures)

    @parser("dm_events")
    def parse_v2_dms(self, page: dict[str, Any]) -> Batch:
        users, media = _includes(page)
        messages, failures = [], []
        for event in listed(page, "data"):
            if event.get("event_type") != "MessageCreate" or event.get("sender_id") == self.user_id:
                continue
            try:
                user = users.get(event["sender_id"], {})
                messages.append(
                    InboundMessage(
                        channel=self.name,
                        external_id=event["id"],
                        conversation_id=event["dm_conversation_id"],
                        author=Author(
                            id=event["sender_id"],
                            handle=_handle(user),
                            name=user.get("name"),
                        ),
                        text=event.get("text", ""),
                        private=True,
                        addressed_to_account=True,
                        received_at=datetime.fromisoformat(
                            event["created_at"].replace("Z", "+00:00")
                        ),
                        attachments=tuple(
                            self._attachments(
                                event.get("attachments", {}).get("media_keys", []), media
                            )
                        ),
                        raw=event,
                    )
                )
            except Exception as exc:  # anything wrong with one item dead-letters that item
                failures.append(
                    Undeliverable(
                        json.dumps(event).encode(), f"DM event not understood: {exc!r}", "dm_events"
                    )
                )
        return Batch(messages=messages, failures=failures)

    @parser("poll")
    def parse_polled(self, payload: bytes) -> Batch:
        """Re-read one dead-lettered tweet or DM event from polling (for `deadletter retry`)."""
        try:
            item = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            return Batch(failures=[Undeliverable(payload, f"not JSON: {exc}", "poll")])
        if not isinstance(item, dict):
            return Batch(failures=[Undeliverable(payload, "not a JSON object", "poll")])
        if "event_type" in item:
            return self.parse_v2_dms({"data": [item]})
        return self.parse_v2_tweets({"data": [item]})

    @staticmethod
    def _attachments(keys: list[str], media: dict[str, dict[str, Any]]) -> list[Attachment]:
        out = []
        for key in keys:
            item = media.get(key, {"type": None})
            out.append(Attachment(kind=_kind(item.get("type")), url=_best_url(item)))
        return out

    @parser("webhook")
    def parse(self, payload: bytes) -> Batch:
        """An Account Activity webhook body (v1.1 shapes), already signature-checked."""
        try:
            body = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            return Batch(
                failures=[Undeliverable(payload, f"webhook body is not JSON: {exc}", "webhook")]
            )
        if not isinstance(body, dict):
            return Batch(
                failures=[Undeliverable(payload, "webhook body is not an object", "webhook")]
            )
        messages, failures = [], []
        for tweet in listed(body, "tweet_create_events"):
            try:
                if tweet["user"]["id_str"] == self.user_id:
                    continue
                text = tweet.get("extended_tweet", {}).get("full_text") or tweet["text"]
                entities = tweet.get("extended_entities") or tweet.get("entities") or {}
                mentions = {
                    m.get("id_str") for m in tweet.get("entities", {}).get("user_mentions", [])
                }
                messages.append(
                    InboundMessage(
                        channel=self.name,
                        external_id=tweet["id_str"],
                        conversation_id=tweet.get("in_reply_to_status_id_str") or tweet["id_str"],
                        author=Author(
                            id=tweet["user"]["id_str"],
                            handle=f"@{tweet['user']['screen_name']}",
                            name=tweet["user"].get("name"),
                        ),
                        text=text,
                        private=False,
                        addressed_to_account=self.user_id in mentions
                        or tweet.get("in_reply_to_user_id_str") == self.user_id,
                        received_at=parsedate_to_datetime(tweet["created_at"]),
                        attachments=tuple(
                            Attachment(
                                kind=_kind(m.get("type")),
                                url=_best_url(
                                    {
                                        "url": m.get("media_url_https"),
                                        "variants": [
                                            {**v, "bit_rate": v.get("bitrate", 0)}
                                            for v in m.get("video_info", {}).get("variants", [])
                                        ],
                                    }
                                ),
                            )
                            for m in entities.get("media", [])
                        ),
                        in_reply_to=tweet.get("in_reply_to_status_id_str"),
                        raw=tweet,
                    )
                )
            except Exception as exc:  # anything wrong with one item dead-letters that item
                failures.append(
                    Undeliverable(
                        json.dumps(tweet).encode(),
                        f"webhook tweet not understood: {exc!r}",
                        "webhook",
                    )
                )
        users = body.get("users", {})
        for event in listed(body, "direct_message_events"):
            try:
                if event.get("type") != "message_create":
                    continue
                create = event["message_create"]
                sender = create["sender_id"]
                if sender == self.user_id:
                    continue
                recipient = create["target"]["recipient_id"]
                media = create["message_data"].get("attachment", {}).get("media")
                user = users.get(sender, {})
                messages.append(
                    InboundMessage(
                        channel=self.name,
                        external_id=event["id"],
                        conversation_id="-".join(sorted((sender, recipient), key=int)),
                        author=Author(
                            id=sender,
                            handle=f"@{user['screen_name']}" if user.get("screen_name") else None,
                            name=user.get("name"),
                        ),
                        text=create["message_data"].get("text", ""),
                        private=True,
                        received_at=datetime.fromtimestamp(
                            int(event["created_timestamp"]) / 1000, UTC
                        ),
                        attachments=(
                            Attachment(
                                kind=_kind(media.get("type")), url=media.get("media_url_https")
                            ),
                        )
                        if media
                        else (),
                        raw=event,
                    )
                )
            except Exception as exc:  # anything wrong with one item dead-letters that item
                failures.append(
                    Undeliverable(
                        json.dumps(event).encode(), f"webhook DM not understood: {exc!r}", "webhook"
                    )
                )
        return Batch(messages=messages, failures=failures)

    # -- sending -------------------------------------------------------------------------
    def reply(self, reply: OutboundReply) -> DeliveryResult:
        """Replies never ask the budget: answering a student is never held back for cost."""
        if reply.private:
            data = self._call(
                self.client.create_direct_message,
                sending=True,
                participant_id=reply.recipient_id,
                text=reply.text,
                bill=_Bill(
                    "POST", "/2/dm_conversations/with/:id/messages", CostKind.WRITE, "reply"
                ),
            )
            event_id = data.get("data", {}).get("dm_event_id")
        else:
            self._check_length(reply.text)
            data = self._call(
                self.client.create_tweet,
                sending=True,
                text=reply.text,
                in_reply_to_tweet_id=reply.in_reply_to_external_id,
                bill=_Bill("POST", "/2/tweets", self._write_kind(reply.text), "reply"),
            )
            event_id = data.get("data", {}).get("id")
        if not event_id:
            raise PermanentError(
                "X accepted the request but returned no id; check before resending",
                channel=self.name,
            )
        return DeliveryResult(external_id=str(event_id), delivered_at=datetime.now(UTC))

    def publish(self, post: OutboundPost) -> DeliveryResult:
        """A campaign post, with up to four photos or one video. Refused before any call when
        it is too long, its media will not do, or this month's budget cannot pay for it."""
        text = post.text
        if post.link and post.link not in text:
            text = f"{text}\n{post.link}"
        self._check_length(text)
        media = [self._media_file(Path(name)) for name in post.media_paths]
        videos = [m for m in media if m[1].kind is not AttachmentKind.IMAGE]
        if len(media) > MAX_PHOTOS or (videos and len(media) > 1):
            raise PermanentError(
                f"an X post carries up to {MAX_PHOTOS} photos or one video; split the post",
                channel=self.name,
            )
        kind = self._write_kind(text)
        cost = price_micros(self.settings.cost, kind) + price_micros(
            self.settings.cost, CostKind.MEDIA_UPLOAD, 3 * len(media)
        )
        budget = self.ledger.budget()
        if not budget.allows(cost):
            refusal = BudgetExceeded(budget, cost_micros=cost, channel=self.name)
            log.warning("campaign post not sent: %s", refusal)
            raise refusal
        media_ids = [self.upload_media(path, fmt, size) for path, fmt, size in media]
        data = self._call(
            self.client.create_tweet,
            sending=True,
            text=text,
            media_ids=media_ids or None,
            bill=_Bill("POST", "/2/tweets", kind, "post"),
        )
        tweet_id = data.get("data", {}).get("id")
        if not tweet_id:
            raise PermanentError(
                "X accepted the post but returned no id; check before resending", channel=self.name
            )
        return DeliveryResult(external_id=str(tweet_id), delivered_at=datetime.now(UTC))

    def recent_posts(self, since: datetime) -> list[PublishedPost]:
        """The account's own tweets since ``since``, replies included (one page of 100)."""
        page = self._call(
            self.client.get_users_tweets,
            self.user_id,
            start_time=since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            max_results=100,
            tweet_fields=["created_at"],
            exclude=["retweets"],
            bill=_Bill("GET", "/2/users/:id/tweets", CostKind.POST_READ, "reconcile"),
        )
        posts = []
        for tweet in page.get("data") or []:
            try:
                posts.append(
                    PublishedPost(
                        external_id=str(tweet["id"]),
                        text=str(tweet["text"]),
                        published_at=tweet["created_at"],
                    )
                )
            except (KeyError, TypeError, ValueError):
                log.warning("twitter: skipped an unreadable tweet of the account's own")
        return posts

    def _check_length(self, text: str) -> None:
        """X refuses what its own counter refuses; finding out here costs no call."""
        length = parse_tweet(text)
        if not length.valid:
            raise PermanentError(
                f"X would refuse this text: {length.weighted_length} of {TWEET_LIMIT} weighted "
                "characters (links count 23, most emoji and CJK 2), or it is empty or holds "
                "a character X does not allow",
                channel=self.name,
            )

    @staticmethod
    def _write_kind(text: str) -> CostKind:
        return CostKind.WRITE_WITH_URL if has_url(text) else CostKind.WRITE

    # -- media -----------------------------------------------------------------------------
    def _media_file(self, path: Path) -> tuple[Path, MediaFormat, int]:
        """What the file is by its bytes, and its size, checked against X's limits."""
        try:
            with path.open("rb") as file:
                fmt = sniff(file.read(SNIFF_BYTES))
            size = path.stat().st_size
        except OSError as exc:
            raise PermanentError(
                f"the media file {path.name} could not be read: {exc.strerror}", channel=self.name
            ) from exc
        except MediaRefused as exc:
            raise PermanentError(f"{path.name}: {exc}", channel=self.name) from exc
        if fmt.media_type not in ("image/jpeg", "image/png", "video/mp4", "video/quicktime"):
            raise PermanentError(
                f"{path.name}: X does not take a {fmt.label}; use a JPEG or PNG photo, or an "
                "MP4 or MOV video",
                channel=self.name,
            )
        limit = MAX_IMAGE_BYTES if fmt.kind is AttachmentKind.IMAGE else MAX_VIDEO_BYTES
        if size > limit:
            raise PermanentError(
                f"{path.name} is {size / 2**20:.1f} MB; X takes {fmt.label}s up to "
                f"{limit // 2**20} MB",
                channel=self.name,
            )
        return path, fmt, size

    def upload_media(self, path: Path, fmt: MediaFormat, size: int) -> str:
        """Upload one file in chunks; its media id, once X can attach it to a post."""
        photo = fmt.kind is AttachmentKind.IMAGE
        init = self._media_call(
            "POST",
            "/2/media/upload/initialize",
            json={
                "media_type": fmt.media_type,
                "total_bytes": size,
                "media_category": "tweet_image" if photo else "tweet_video",
            },
        )
        media_id = str(init.get("data", {}).get("id") or "")
        if not media_id:
            raise TransientError("X opened no upload session (no media id)", channel=self.name)
        try:
            with path.open("rb") as file:
                for index, chunk in enumerate(iter(lambda: file.read(CHUNK_BYTES), b"")):
                    self._media_call(
                        "POST",
                        f"/2/media/upload/{media_id}/append",
                        endpoint="/2/media/upload/:id/append",
                        data={"segment_index": str(index)},
                        files={"media": (path.name, chunk, "application/octet-stream")},
                    )
        except OSError as exc:
            raise PermanentError(
                f"the media file {path.name} could not be read: {exc.strerror}", channel=self.name
            ) from exc
        final = self._media_call(
            "POST", f"/2/media/upload/{media_id}/finalize", endpoint="/2/media/upload/:id/finalize"
        )
        self._await_processing(media_id, final.get("data", {}).get("processing_info"), path)
        return media_id

    def _await_processing(self, media_id: str, info: dict[str, Any] | None, path: Path) -> None:
        """Poll a video's processing as X asks (``check_after_secs``), for a bounded time."""
        waited = 0.0
        while info and info.get("state") in ("pending", "in_progress"):
            delay = max(1.0, float(info.get("check_after_secs") or 1))
            if waited + delay > MAX_PROCESSING_SECONDS:
                raise TransientError(
                    f"X was still processing {path.name} after {waited:.0f} s; the post will be "
                    "tried again",
                    channel=self.name,
                )
            self._sleep(delay)
            waited += delay
            status = self._media_call(
                "GET",
                "/2/media/upload",
                params={"command": "STATUS", "media_id": media_id},
            )
            info = status.get("data", {}).get("processing_info")
        if info and info.get("state") == "failed":
            error = info.get("error") or {}
            why = ": ".join(str(error[k]) for k in ("name", "message") if error.get(k))
            raise PermanentError(
                f"X could not process {path.name}{f' ({why})' if why else ''}; "
                "check the file and attach it again",
                channel=self.name,
            )
        if info and info.get("state") != "succeeded":
            raise TransientError(
                f"X reported an unknown processing state {info.get('state')!r} for {path.name}",
                channel=self.name,
            )

    def _media_call(
        self, method: str, route: str, *, endpoint: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """One upload call on tweepy's session with the account's user credentials: nothing
        is posted yet, so a lost answer is safe to retry (the post is uploaded again)."""
        bill = _Bill(method, endpoint or route, CostKind.MEDIA_UPLOAD, "media")
        return self._call(self._request, method, route, bill=bill, **kwargs)

    def _request(self, method: str, route: str, **kwargs: Any) -> dict[str, Any]:
        headers = {"User-Agent": self.client.user_agent}
        connected = self._stored_token()
        auth = None
        if connected is not None:  # the OAuth 2.0 user token (scope media.write)
            headers["Authorization"] = f"Bearer {connected}"
        else:
            auth = tweepy.OAuth1UserHandler(
                self.client.consumer_key,
                self.client.consumer_secret,
                self.client.access_token,
                self.client.access_token_secret,
            ).apply_auth()
        with self.client.session.request(
            method,
            API_HOST + route,
            auth=auth,
            headers=headers,
            **kwargs,
        ) as response:
            _raise_for_status(response)
            if not response.content.strip():
                return {}
            body = response.json()
        if not isinstance(body, dict):
            raise ValueError("X answered with JSON that is not an object")
        return body

    # -- webhooks ------------------------------------------------------------------------
    def _signature(self, message: bytes) -> str:
        if not self._consumer_secret:
            raise ConfigError("twitter.consumer_secret is needed for webhooks")
        digest = hmac.new(self._consumer_secret.encode(), message, hashlib.sha256).digest()
        return "sha256=" + base64.b64encode(digest).decode()

    def router(self, on_payload: Callable[[str, bytes], None]) -> APIRouter:
        """``on_payload(channel, body)`` must store the body before returning."""
        routes = APIRouter(prefix="/webhooks/twitter")

        @routes.get("")
        def crc(crc_token: str) -> JSONResponse:
            return JSONResponse({"response_token": self._signature(crc_token.encode())})

        @routes.post("")
        async def events(request: Request) -> Response:
            body = await read_capped(request, MAX_WEBHOOK_BYTES)
            if body is None:
                return Response("payload too large", status_code=413)
            given = request.headers.get("x-twitter-webhooks-signature", "")
            if not hmac.compare_digest(given, self._signature(body)):
                return Response("bad signature", status_code=403)
            await run_in_threadpool(on_payload, self.name, body)  # the database is blocking
            return Response(status_code=200)

        return routes
