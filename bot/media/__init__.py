"""Photos and videos sent with reports: checked by their bytes, kept whole, stripped to leave."""

from bot.media.errors import MediaError, MediaNotFound, MediaRefused
from bot.media.sniff import FORMATS, MediaFormat, sniff
from bot.media.storage import LocalFolder, MediaBackend, open_backend
from bot.media.store import MediaStore, OutboundCopy, SweepReport

__all__ = [
    "FORMATS",
    "LocalFolder",
    "MediaBackend",
    "MediaError",
    "MediaFormat",
    "MediaNotFound",
    "MediaRefused",
    "MediaStore",
    "OutboundCopy",
    "SweepReport",
    "open_backend",
    "sniff",
]
