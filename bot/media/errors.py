"""What can go wrong with media, worded for the officer or student who meets it."""

from __future__ import annotations

from bot.errors import BotError


class MediaError(BotError):
    """Media could not be stored, found or read; nothing half-written is left behind."""


class MediaRefused(MediaError):
    """The upload is not an accepted photo or video (its bytes, its size or its damage)."""


class MediaNotFound(MediaError):
    """No stored media has that sha256."""
