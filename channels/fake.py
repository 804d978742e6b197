"""An in-memory channel that records what is sent and fails on cue: a real adapter for tests."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from itertools import count
from typing import ClassVar

from bot.messages import (
    Capabilities,
    DeliveryResult,
    InboundMessage,
    OutboundPost,
    OutboundReply,
    PublishedPost,
)
from channels.base import BaseChannel, Batch


class FakeChannel(BaseChannel):
    name: ClassVar[str] = "fake"
    capabilities: ClassVar[Capabilities] = Capabilities(
        private_reply=True, public_reply=True, publish=True, attachments=True, max_text_chars=2000
    )

    def __init__(self, inbox: list[InboundMessage] | None = None) -> None:
        self.inbox = list(inbox or [])
        self.replies: list[OutboundReply] = []
        self.posts: list[OutboundPost] = []
        self.published: list[PublishedPost] = []
        self.failures: deque[Exception] = deque()
        self._ids = count(1)

    def fail_next(self, *errors: Exception) -> None:
        """Queue errors: each send raises the next one before anything is recorded."""
        self.failures.extend(errors)

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.popleft()

    def fetch(self, cursor: str | None) -> Batch:
        self._maybe_fail()
        start = int(cursor or 0)
        return Batch(messages=self.inbox[start:], cursor=str(len(self.inbox)))

    def reply(self, reply: OutboundReply) -> DeliveryResult:
        self._maybe_fail()
        self.replies.append(reply)
        return DeliveryResult(external_id=f"fake-{next(self._ids)}", delivered_at=datetime.now(UTC))

    def publish(self, post: OutboundPost) -> DeliveryResult:
        self._maybe_fail()
        self.posts.append(post)
        result = DeliveryResult(
            external_id=f"fake-{next(self._ids)}", delivered_at=datetime.now(UTC)
        )
        self.published.append(
            PublishedPost(
                external_id=result.external_id, text=post.text, published_at=result.delivered_at
            )
        )
        return result

    def recent_posts(self, since: datetime) -> list[PublishedPost]:
        self._maybe_fail()
        return [p for p in self.published if p.published_at >= since]
