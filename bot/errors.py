"""Typed errors, so callers can tell what to retry, when, and what to stop doing.

A channel never returns ``False`` for a failure: it raises one of these, and the caller
decides between rescheduling (``RateLimited``), backing off (``TransientError``), parking
the channel (``AuthError``) or giving up on one item (``PermanentError``).
"""

from __future__ import annotations

from datetime import datetime


class BotError(Exception):
    """Base of everything the bot raises on purpose."""


class ConfigError(BotError):
    """Configuration is invalid or incomplete; the message names the field."""


class ParseError(BotError):
    """An inbound payload could not be understood; it goes to the dead-letter table."""


class ChannelError(BotError):
    """A channel API call failed."""

    def __init__(self, message: str, *, channel: str = "") -> None:
        super().__init__(message)
        self.channel = channel


class AuthError(ChannelError):
    """Credentials rejected or expired: the channel needs an officer to re-authorise it."""


class RateLimited(ChannelError):
    """The API asked us to wait; ``retry_at`` is when the job should run again."""

    def __init__(self, message: str, *, retry_at: datetime, channel: str = "") -> None:
        super().__init__(message, channel=channel)
        self.retry_at = retry_at


class TransientError(ChannelError):
    """Timeouts and 5xx: worth retrying with backoff."""


class PermanentError(ChannelError):
    """The request itself is wrong (400, 404, too long): retrying will not help."""


class NotSupported(ChannelError):
    """The channel cannot do this at all (e.g. a private reply on a feed)."""
