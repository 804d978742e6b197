"""The one protocol every channel adapter implements.

A channel turns its platform's payloads into ``InboundMessage`` values and sends replies
and posts back. It never touches the database: the pipeline stores what a channel reads,
and the scheduler's jobs call its send methods. Failures are raised as the typed errors
in ``bot.errors`` so the caller can tell a rate limit from an expired token.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Protocol, TypeVar, cast, runtime_checkable

from starlette.requests import Request

from bot.errors import NotSupported
from bot.messages import (
    Capabilities,
    DeliveryResult,
    InboundMessage,
    OutboundPost,
    OutboundReply,
    PublishedPost,
)

log = logging.getLogger(__name__)
ParseFn = TypeVar("ParseFn", bound=Callable[..., "Batch"])


@dataclass(frozen=True)
class Undeliverable:
    """Something received that could not be parsed: kept byte for byte for the dead letters."""

    raw: bytes
    reason: str
    origin: str = ""


@dataclass(frozen=True)
class Batch:
    """What one fetch or one webhook delivery produced."""

    messages: list[InboundMessage] = field(default_factory=list)
    failures: list[Undeliverable] = field(default_factory=list)
    cursor: str | None = None
    exhausted: bool = True  # False when more is waiting past ``cursor``


class Health(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"  # rate-limited or erroring, expected to recover
    NEEDS_AUTH = "needs_auth"  # an officer must reconnect the account
    DISABLED = "disabled"


@dataclass(frozen=True)
class ChannelStatus:
    health: Health
    detail: str = ""


@runtime_checkable
class Channel(Protocol):
    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def check(self) -> ChannelStatus:
        """Are the credentials good and the API reachable? Never raises for a bad token."""
        ...

    def fetch(self, cursor: str | None) -> Batch:
        """Read what arrived since ``cursor`` (polling)."""
        ...

    def parse(self, payload: bytes) -> Batch:
        """Map one raw payload (a webhook body, a feed item, a line) to messages. Pure."""
        ...

    def publish(self, post: OutboundPost) -> DeliveryResult:
        """Post to the account's own timeline or page."""
        ...

    def reply(self, reply: OutboundReply) -> DeliveryResult:
        """Answer one message, publicly in its thread or privately to its author."""
        ...

    def recent_posts(self, since: datetime) -> list[PublishedPost]:
        """The account's own posts since ``since``: did an interrupted publish go out?"""
        ...


class BaseChannel:
    """Defaults that refuse clearly, so an adapter only writes what its platform can do."""

    name: ClassVar[str] = "base"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def check(self) -> ChannelStatus:
        return ChannelStatus(Health.OK)

    def fetch(self, cursor: str | None) -> Batch:
        raise NotSupported(f"{self.name} cannot be polled", channel=self.name)

    def parse(self, payload: bytes) -> Batch:
        raise NotSupported(f"{self.name} has no payload parser", channel=self.name)

    def publish(self, post: OutboundPost) -> DeliveryResult:
        raise NotSupported(f"{self.name} cannot publish posts", channel=self.name)

    def reply(self, reply: OutboundReply) -> DeliveryResult:
        raise NotSupported(f"{self.name} cannot send replies", channel=self.name)

    def recent_posts(self, since: datetime) -> list[PublishedPost]:
        raise NotSupported(f"{self.name} cannot list its own posts", channel=self.name)


async def read_capped(request: Request, limit: int) -> bytes | None:
    """A webhook body, or None once it passes ``limit`` bytes: never buffered whole first."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def listed(container: object, key: str) -> list[Any]:
    """The list a payload holds under ``key``: absent or null is none, anything else a fault.

    A value of the wrong type raises ``MalformedPayload``, so the caller dead-letters the
    payload instead of silently reading nothing from it.
    """
    if not isinstance(container, dict):
        raise MalformedPayload(f"expected an object holding {key!r}")
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedPayload(f"{key!r} is a {type(value).__name__}, not a list")
    return value


class MalformedPayload(ValueError):
    """A payload whose shape is not the platform's."""


def parser(origin: str) -> Callable[[ParseFn], ParseFn]:
    """Mark a parser of outside data: if it fails on something nobody foresaw, keep the payload.

    Parsers dead-letter what they do not understand item by item; this is the net under
    them, so a parser bug or a payload of a shape never seen costs a dead letter (retried
    once the parser is fixed), never the message. The payload is the last positional
    argument: bytes as they came, or a decoded page, kept as JSON.
    """

    def wrap(parse: ParseFn) -> ParseFn:
        @functools.wraps(parse)
        def guarded(*args: Any, **kwargs: Any) -> Batch:
            try:
                return parse(*args, **kwargs)
            except Exception as exc:
                payload = args[-1] if args else None
                raw = (
                    payload
                    if isinstance(payload, bytes)
                    else json.dumps(payload, default=str).encode()
                )
                log.warning("%s payload not understood, dead-lettered: %r", origin, exc)
                return Batch(failures=[Undeliverable(raw, f"not understood: {exc!r}", origin)])

        return cast(ParseFn, guarded)

    return wrap
