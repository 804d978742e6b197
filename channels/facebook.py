"""The university's Facebook Page: Messenger, page comments and posts, via facebook-sdk.

- Webhooks (Rasa-style, owned here): the GET verification echoes ``hub.challenge`` only for
  the configured verify token; a POST is accepted only with a valid ``X-Hub-Signature-256``
  (HMAC-SHA256 of the raw body with the app secret, compared in constant time), checked
  before anything is parsed. Messages (text, image, video), postbacks and new comments on
  the page's posts become messages; echoes, receipts and the page's own comments do not.
- facebook-sdk's own version check stops at 3.x, so the Graph version from config goes in
  every path (``v25.0/me/messages``) through ``GraphAPI.request``.
- Messenger policy: inside 24 hours of the person's last message, ``RESPONSE``; after that
  only a person's reply, with the ``HUMAN_AGENT`` tag, up to 7 days; otherwise refused.
- Errors: codes 4, 17, 32, 613 and 80001 are rate limits (``RateLimited`` at the time the
  usage headers give, else in 15 minutes); 190 means the token expired (``AuthError``: posts
  stay queued); 1, 2 and server errors are transient; anything else is permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import facebook
import requests
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

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

TIMEOUT = 30
MAX_WEBHOOK_BYTES = 2 * 1024 * 1024
RATE_LIMIT_CODES = {4, 17, 32, 613, 80001, 80002, 80003, 80004, 80005, 80006, 80008}
TRANSIENT_CODES = {1, 2}
DEFAULT_WAIT = timedelta(minutes=15)
STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)


class _RecordingSession(requests.Session):
    """Keeps the last response, so the usage headers are readable after an error."""

    last: requests.Response | None = None

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        self.last = super().request(*args, **kwargs)
        return self.last


def _kind(value: str | None) -> AttachmentKind:
    return {
        "image": AttachmentKind.IMAGE,
        "video": AttachmentKind.VIDEO,
        "audio": AttachmentKind.AUDIO,
    }.get(value or "", AttachmentKind.FILE)


class FacebookChannel(BaseChannel):
    name: ClassVar[str] = "facebook"
    capabilities: ClassVar[Capabilities] = PLATFORM_CAPABILITIES["facebook"]

    def __init__(self, settings: FacebookSettings) -> None:
        if settings.page_id is None:
            raise ConfigError("facebook.page_id is not set")

        def secret(name: str) -> str:
            value = getattr(settings, name)
            return value.get_secret_value() if value is not None else ""

        self.settings = settings
        self.page_id = settings.page_id
        self.version = settings.graph_version
        self._session = _RecordingSession()
        self.graph = facebook.GraphAPI(
            access_token=secret("page_access_token"), timeout=TIMEOUT, session=self._session
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
        method: str | None = None,
    ) -> dict[str, Any]:
        """The one place Graph errors become the bot's typed errors."""
        try:
            result = self.graph.request(
                f"{self.version}/{path}", args=args, post_args=post_args, method=method
            )
        except facebook.GraphAPIError as exc:
            raise self._typed(exc) from exc
        except requests.ReadTimeout as exc:
            if post_args is not None:  # it may have arrived: sending again could double it
                raise PermanentError(
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
        return PermanentError(message, channel=self.name)

    def _regain_access(self) -> datetime:
        """When Meta says access returns (X-Business-Use-Case-Usage), else a safe wait."""
        now = datetime.now(UTC)
        header = (
            self._session.last.headers.get("X-Business-Use-Case-Usage")
            if self._session.last is not None
            else None
        )
        minutes = 0
        if header:
            try:
                usage = json.loads(header)
                minutes = max(
                    (
                        int(item.get("estimated_time_to_regain_access", 0))
                        for items in usage.values()
                        for item in items
                    ),
                    default=0,
                )
            except (ValueError, TypeError, AttributeError):
                minutes = 0
        return now + (timedelta(minutes=minutes) if minutes > 0 else DEFAULT_WAIT)

    def check(self) -> ChannelStatus:
        try:
            page = self._call(self.page_id, args={"fields": "id,name"})
        except AuthError as exc:
            return ChannelStatus(Health.NEEDS_AUTH, str(exc))
        except ChannelError as exc:
            return ChannelStatus(Health.DEGRADED, str(exc))
        return ChannelStatus(Health.OK, str(page.get("name", self.page_id)))

    # -- parsing (pure) ------------------------------------------------------------------
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
            for event in entry.get("messaging", []) if isinstance(entry, dict) else []:
                self._collect(self._messaging(event), event, messages, failures)
            for change in entry.get("changes", []) if isinstance(entry, dict) else []:
                self._collect(self._comment(change), change, messages, failures)
        return Batch(messages=messages, failures=failures)

    @staticmethod
    def _collect(
        make: Callable[[], InboundMessage | None],
        raw: Any,
        messages: list[InboundMessage],
        failures: list[Undeliverable],
    ) -> None:
        try:
            message = make()
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            failures.append(
                Undeliverable(
                    json.dumps(raw).encode(), f"webhook event not understood: {exc!r}", "webhook"
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
                else datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z")
            )
            parent = value.get("parent_id")
            return InboundMessage(
                channel=self.name,
                external_id=value["comment_id"],
                conversation_id=value["post_id"],
                author=Author(id=value["from"]["id"], name=value["from"].get("name")),
                text=value.get("message", ""),
                private=False,
                addressed_to_account=True,
                received_at=at,
                in_reply_to=parent if parent and parent != value["post_id"] else None,
                attachments=(Attachment(kind=AttachmentKind.IMAGE, url=value["photo"]),)
                if value.get("photo")
                else (),
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
        body: dict[str, Any]
        if is_comment:  # a Private Reply to a public comment: once, within 7 days
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

    def _messaging_type(self, reply: OutboundReply) -> dict[str, str]:
        last = reply.user_last_message_at
        age = datetime.now(UTC) - last if last is not None else None
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
        args = {"message": post.text, **({"link": post.link} if post.link else {})}
        result = self._call(f"{self.page_id}/feed", post_args=args)
        return self._delivered(result.get("id"))

    def _delivered(self, external_id: Any) -> DeliveryResult:
        if not external_id:
            raise PermanentError(  # accepted, so it may be out there: never blindly resend
                "Facebook accepted the request but returned no id; check the page before resending",
                channel=self.name,
            )
        return DeliveryResult(external_id=str(external_id), delivered_at=datetime.now(UTC))

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
