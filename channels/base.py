"""The one protocol every channel adapter implements.

A channel turns its platform's payloads into ``InboundMessage`` values and sends replies
and posts back. It never touches the database: the pipeline stores what a channel reads,
and the scheduler's jobs call its send methods. Failures are raised as the typed errors
in ``bot.errors`` so the caller can tell a rate limit from an expired token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Protocol, runtime_checkable

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
