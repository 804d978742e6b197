"""X (Twitter) API v2 through tweepy's Client: mentions and DMs in, replies and posts out.

- Polling: mentions since the last seen id (following ``next_token`` pages back to it) and
  DM events newest-first until the last seen event. The cursor only advances when every page
  was read, so a round cut short is read again and de-duplication absorbs the overlap.
- Webhooks (Account Activity): the CRC challenge and ``x-twitter-webhooks-signature`` are
  checked here, before anything is parsed; a tweet seen by webhook and by poll has the same
  id, so it is one message.
- Errors map to ``bot.errors``: 429 -> ``RateLimited`` at ``x-rate-limit-reset``, 401 ->
  ``AuthError``, 5xx, timeouts and unreadable bodies -> ``TransientError``, other 4xx ->
  ``PermanentError``. Nothing here sleeps: the caller reschedules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import requests
import tweepy
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from bot.config import TwitterSettings
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
)
from channels.base import (
    BaseChannel,
    Batch,
    ChannelStatus,
    Health,
    Undeliverable,
    read_capped,
)
from channels.registry import PLATFORM_CAPABILITIES

TIMEOUT = (5.0, 30.0)  # connect, read: tweepy sets none, and a hung call would stall a worker
MAX_PAGES = 10
MAX_WEBHOOK_BYTES = 2 * 1024 * 1024
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


class _TimeoutSession(requests.Session):
    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(*args, **kwargs)


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

    def __init__(self, settings: TwitterSettings, *, client: tweepy.Client | None = None) -> None:
        if settings.user_id is None:
            raise ConfigError("twitter.user_id is not set")
        self.settings = settings
        self.user_id = settings.user_id

        def secret(name: str) -> str | None:
            value = getattr(settings, name)
            return value.get_secret_value() if value is not None else None

        self.client = client or tweepy.Client(
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
    def from_settings(cls, settings: TwitterSettings) -> TwitterChannel:
        missing = settings.missing()
        if missing:
            raise ConfigError(f"twitter is missing {', '.join(missing)}")
        return cls(settings)

    # -- calls ---------------------------------------------------------------------------
    def _call(
        self, fn: Callable[..., Any], *args: Any, sending: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        """The one place API errors become the bot's typed errors."""
        try:
            result = fn(*args, **kwargs)
        except tweepy.TooManyRequests as exc:
            reset = exc.response.headers.get("x-rate-limit-reset")
            retry_at = (
                datetime.fromtimestamp(int(reset), UTC)
                if reset and reset.isdigit()
                else datetime.now(UTC)
            )
            raise RateLimited("X rate limit reached", retry_at=retry_at, channel=self.name) from exc
        except tweepy.Unauthorized as exc:
            raise AuthError(
                "X rejected the credentials (401): reconnect the account", channel=self.name
            ) from exc
        except tweepy.TwitterServerError as exc:
            raise TransientError(
                f"X server error {exc.response.status_code}", channel=self.name
            ) from exc
        except tweepy.HTTPException as exc:  # 400, 403, 404 and other 4xx
            raise PermanentError(
                f"X refused the request ({exc.response.status_code}): "
                f"{'; '.join(exc.api_messages) or exc.response.reason}",
                channel=self.name,
            ) from exc
        except requests.ReadTimeout as exc:
            if sending:  # it may have arrived: sending again could double it
                raise PermanentError(
                    "X did not answer after the request was sent; check before resending",
                    channel=self.name,
                ) from exc
            raise TransientError("X did not answer in time", channel=self.name) from exc
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientError(f"X unreachable: {type(exc).__name__}", channel=self.name) from exc
        except (requests.JSONDecodeError, ValueError) as exc:
            raise TransientError("X returned an unreadable body", channel=self.name) from exc
        return result if isinstance(result, dict) else {}

    def check(self) -> ChannelStatus:
        try:
            me = self._call(self.client.get_me, user_auth=True)
        except AuthError as exc:
            return ChannelStatus(Health.NEEDS_AUTH, str(exc))
        except ChannelError as exc:
            return ChannelStatus(Health.DEGRADED, str(exc))
        return ChannelStatus(Health.OK, f"@{me.get('data', {}).get('username', '?')}")

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

    def _mentions(
        self, since_id: str | None
    ) -> tuple[list[InboundMessage], list[Undeliverable], str | None, bool]:
        messages: list[InboundMessage] = []
        failures: list[Undeliverable] = []
        newest = since_id
        token = None
        for _ in range(MAX_PAGES):
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
        return messages, failures, newest, False

    def _dms(
        self, last_seen: str | None
    ) -> tuple[list[InboundMessage], list[Undeliverable], str | None]:
        messages: list[InboundMessage] = []
        failures: list[Undeliverable] = []
        newest: str | None = None
        token = None
        for _ in range(MAX_PAGES):
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
    def parse_v2_tweets(self, page: dict[str, Any]) -> Batch:
        users, media = _includes(page)
        messages, failures = [], []
        for tweet in page.get("data", []):
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
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                failures.append(
                    Undeliverable(
                        json.dumps(tweet).encode(), f"tweet not understood: {exc!r}", "mentions"
                    )
                )
        return Batch(messages=messages, failures=failures)

    def parse_v2_dms(self, page: dict[str, Any]) -> Batch:
        users, media = _includes(page)
        messages, failures = [], []
        for event in page.get("data", []):
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
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                failures.append(
                    Undeliverable(
                        json.dumps(event).encode(), f"DM event not understood: {exc!r}", "dm_events"
                    )
                )
        return Batch(messages=messages, failures=failures)

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
        for tweet in body.get("tweet_create_events", []):
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
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                failures.append(
                    Undeliverable(
                        json.dumps(tweet).encode(),
                        f"webhook tweet not understood: {exc!r}",
                        "webhook",
                    )
                )
        users = body.get("users", {})
        for event in body.get("direct_message_events", []):
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
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                failures.append(
                    Undeliverable(
                        json.dumps(event).encode(), f"webhook DM not understood: {exc!r}", "webhook"
                    )
                )
        return Batch(messages=messages, failures=failures)

    # -- sending -------------------------------------------------------------------------
    def reply(self, reply: OutboundReply) -> DeliveryResult:
        if reply.private:
            data = self._call(
                self.client.create_direct_message,
                sending=True,
                participant_id=reply.recipient_id,
                text=reply.text,
            )
            event_id = data.get("data", {}).get("dm_event_id")
        else:
            data = self._call(
                self.client.create_tweet,
                sending=True,
                text=reply.text,
                in_reply_to_tweet_id=reply.in_reply_to_external_id,
            )
            event_id = data.get("data", {}).get("id")
        if not event_id:
            raise PermanentError(
                "X accepted the request but returned no id; check before resending",
                channel=self.name,
            )
        return DeliveryResult(external_id=str(event_id), delivered_at=datetime.now(UTC))

    def publish(self, post: OutboundPost) -> DeliveryResult:
        data = self._call(self.client.create_tweet, sending=True, text=post.text)
        tweet_id = data.get("data", {}).get("id")
        if not tweet_id:
            raise PermanentError(
                "X accepted the post but returned no id; check before resending", channel=self.name
            )
        return DeliveryResult(external_id=str(tweet_id), delivered_at=datetime.now(UTC))

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
