"""Where original media bytes live: a backend interface and the local folder behind it.

Keys are sha256 hex digests, so a stored file is named by its content and can be checked
against its name at any time. Uploads are staged by the store on local disk and handed to
``put`` only once verified; the local folder takes them with one atomic rename, so a file
under its final name is always whole.

Only the local folder exists. An S3-compatible store would be a second class with these
four methods; the configuration refuses any backend name until one is written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from bot.config import MediaSettings
from bot.errors import ConfigError
from bot.media.errors import MediaError

KEY = re.compile(r"^[0-9a-f]{64}$")


class MediaBackend(Protocol):
    name: str

    def put(self, key: str, staged: Path) -> None:
        """Take a verified staged file as ``key`` (the staged file is consumed)."""
        ...

    def open(self, key: str) -> BinaryIO:
        """The stored bytes, for reading; MediaError if they are missing."""
        ...

    def delete(self, key: str) -> None:
        """Remove the stored bytes; no error if already gone."""
        ...

    def stored(self) -> Iterator[tuple[str, float]]:
        """Every stored key, with when it was stored (a POSIX timestamp)."""
        ...


class LocalFolder:
    """``<root>/ab/cd/<sha256>``, private to the bot's user, each file read-only once stored."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        if not KEY.match(key):
            raise MediaError(f"not a media key: {key[:80]!r}")
        return self.root / key[:2] / key[2:4] / key

    def put(self, key: str, staged: Path) -> None:
        final = self.path(key)
        if final.exists():  # the same content, stored before
            staged.unlink()
            return
        for folder in (self.root, final.parent.parent, final.parent):
            folder.mkdir(mode=0o700, exist_ok=True)
        staged.chmod(0o400)
        os.replace(staged, final)
        _fsync_dir(final.parent)

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError:
            raise MediaError(f"the stored file for {key} is missing from {self.root}") from None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def stored(self) -> Iterator[tuple[str, float]]:
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            if KEY.match(path.name):
                yield path.name, path.stat().st_mtime


def open_backend(settings: MediaSettings, media_dir: Path) -> MediaBackend:
    if settings.backend == LocalFolder.name:
        return LocalFolder(media_dir / "objects")
    raise ConfigError(f"media.backend {settings.backend!r} is not implemented; use 'local'")


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable, not just the file's bytes."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
