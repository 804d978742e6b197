"""ISO base media (MP4, MOV) box walking: checking a video's structure, and removing location.

A video is a sequence of boxes (size, four-letter type, body), some of which hold more
boxes. Checking walks the top level end to end, so a truncated or padded upload is caught
by its box sizes not adding up, and requires a movie header with a video track. No frame
is decoded: the bytes are kept exactly as sent.

Location is removed without re-encoding: each box that carries it (``©xyz`` and ``loci``
in user data, the QuickTime ``location.*`` metadata items, and XMP packets) keeps its
size but becomes a ``free`` box whose body is zeroed, so players skip it and the
coordinates are no longer anywhere in the file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from bot.media.errors import MediaRefused

# Boxes whose bodies are more boxes, on the way to where location is stored.
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"udta", b"meta", b"ilst"}
LOCATION_BOXES = {b"\xa9xyz", b"loci", b"XMP_"}
XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
LOCATION_KEY_PREFIX = b"com.apple.quicktime.location."
COPY_CHUNK = 1 << 20


class BoxError(ValueError):
    """The box structure is inconsistent (a size that overruns its parent, a cut header)."""


@dataclass(frozen=True)
class Box:
    type: bytes
    offset: int
    header: int  # bytes before the body: 8, 16 with a 64-bit size, +16 for a uuid's id
    size: int
    large: bool = False  # the size is the 64-bit field after the type

    @property
    def body(self) -> int:
        return self.offset + self.header

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class Patch:
    """Bytes to write over the original at ``offset``, in an outbound copy."""

    offset: int
    data: bytes


def boxes(f: BinaryIO, start: int, end: int) -> Iterator[Box]:
    """The boxes that exactly fill ``[start, end)``; BoxError if they do not."""
    pos = start
    while pos < end:
        if end - pos < 8:
            raise BoxError(f"{end - pos} stray bytes at offset {pos}")
        f.seek(pos)
        size, kind = struct.unpack(">I4s", _read(f, 8))
        header, large = 8, False
        if size == 1:
            if end - pos < 16:
                raise BoxError(f"box {_name(kind)} at offset {pos} has a cut 64-bit size")
            (size,) = struct.unpack(">Q", _read(f, 8))
            header, large = 16, True
        elif size == 0:  # "to the end of the file"
            size = end - pos
        if kind == b"uuid":
            header += 16
        if size < header or size > end - pos:
            raise BoxError(
                f"box {_name(kind)} at offset {pos} claims {size} bytes but {end - pos} remain"
            )
        yield Box(kind, pos, header, size, large)
        pos += size


@dataclass(frozen=True)
class VideoFacts:
    location: tuple[Patch, ...]  # empty when the video carries no location

    @property
    def has_location(self) -> bool:
        return bool(self.location)


def check_video(f: BinaryIO, size: int, label: str) -> VideoFacts:
    """Refuse anything that is not a whole movie with a video track; find its location boxes."""
    try:
        top = list(boxes(f, 0, size))
        if not top or top[0].type != b"ftyp":
            raise BoxError("it does not start with a file type box")
        movies = [box for box in top if box.type == b"moov"]
        if len(movies) != 1:
            raise BoxError(f"{len(movies)} movie headers instead of one")
        if not any(box.type == b"mdat" for box in top):
            raise BoxError("it holds no media data")
        if b"vide" not in _track_handlers(f, movies[0]):
            raise MediaRefused(f"the {label} has no video track (audio alone is not accepted)")
        return VideoFacts(tuple(_location_patches(f, top)))
    except BoxError as exc:
        raise MediaRefused(f"the {label} is damaged or incomplete: {exc}") from None


def location_patches(f: BinaryIO, size: int) -> tuple[Patch, ...]:
    """Where a stored (already checked) video carries location, as patches that remove it."""
    return tuple(_location_patches(f, list(boxes(f, 0, size))))


def copy_patched(src: BinaryIO, dst: BinaryIO, patches: tuple[Patch, ...]) -> int:
    """Copy ``src`` to ``dst`` in chunks, overwriting the patched ranges; returns bytes copied."""
    src.seek(0)
    pos = 0
    while chunk := src.read(COPY_CHUNK):
        end = pos + len(chunk)
        buffer: bytes | bytearray = chunk
        for patch in patches:
            lo, hi = max(patch.offset, pos), min(patch.offset + len(patch.data), end)
            if lo < hi:
                if isinstance(buffer, bytes):
                    buffer = bytearray(buffer)
                buffer[lo - pos : hi - pos] = patch.data[lo - patch.offset : hi - patch.offset]
        dst.write(buffer)
        pos = end
    return pos


def _track_handlers(f: BinaryIO, moov: Box) -> set[bytes]:
    handlers: set[bytes] = set()
    for trak in _children(f, moov, b"trak"):
        for mdia in _children(f, trak, b"mdia"):
            for hdlr in _children(f, mdia, b"hdlr"):
                if hdlr.size >= hdlr.header + 12:
                    f.seek(hdlr.body + 8)  # after version, flags and pre_defined
                    handlers.add(_read(f, 4))
    return handlers


def _children(f: BinaryIO, parent: Box, kind: bytes) -> Iterator[Box]:
    return (box for box in boxes(f, _first_child(f, parent), parent.end) if box.type == kind)


def _first_child(f: BinaryIO, box: Box) -> int:
    """Where a container's children start: ISO ``meta`` has version and flags first,
    QuickTime's does not (its first child, ``hdlr``, follows the header directly)."""
    if box.type != b"meta":
        return box.body
    f.seek(box.body + 4)
    return box.body if f.read(4) == b"hdlr" else box.body + 4


def _location_patches(
    f: BinaryIO, level: list[Box], location_keys: frozenset[int] = frozenset()
) -> Iterator[Patch]:
    """``location_keys`` are the ``ilst`` item types that name location keys, passed down
    from the ``meta`` whose ``keys`` box defines them."""
    for box in level:
        if box.type == b"keys":
            location_keys = _location_key_indexes(f, box)
    for box in level:
        if _carries_location(f, box, location_keys):
            yield from _blank(box)
        elif box.type in CONTAINERS:
            children = list(boxes(f, _first_child(f, box), box.end))
            yield from _location_patches(f, children, location_keys)


def _carries_location(f: BinaryIO, box: Box, location_keys: frozenset[int]) -> bool:
    if box.type in LOCATION_BOXES or _is_xmp_uuid(f, box):
        return True
    return bool(location_keys) and _key_index(box) in location_keys


def _location_key_indexes(f: BinaryIO, keys: Box) -> frozenset[int]:
    """QuickTime metadata names its items in a ``keys`` box; ``ilst`` items refer to them
    by 1-based index. The indexes whose names are location keys."""
    f.seek(keys.body + 4)  # version and flags
    (count,) = struct.unpack(">I", _read(f, 4))
    pos, found = keys.body + 8, set[int]()
    for index in range(1, count + 1):
        if pos + 8 > keys.end:
            raise BoxError("the metadata key list is cut short")
        f.seek(pos)
        (key_size,) = struct.unpack(">I", _read(f, 4))
        if key_size < 8 or pos + key_size > keys.end:
            raise BoxError("a metadata key overruns its list")
        f.seek(pos + 8)  # after size and namespace
        if _read(f, key_size - 8).startswith(LOCATION_KEY_PREFIX):
            found.add(index)
        pos += key_size
    return frozenset(found)


def _key_index(box: Box) -> int:
    index: int = struct.unpack(">I", box.type)[0]
    return index


def _is_xmp_uuid(f: BinaryIO, box: Box) -> bool:
    if box.type != b"uuid":
        return False
    f.seek(box.body - 16)
    return f.read(16) == XMP_UUID


def _blank(box: Box) -> Iterator[Patch]:
    yield Patch(box.offset + 4, b"free")
    after_size = box.offset + (16 if box.large else 8)  # a uuid's id is zeroed with the body
    yield Patch(after_size, bytes(box.end - after_size))


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise BoxError("the file ends inside a box header")
    return data


def _name(kind: bytes) -> str:
    return repr(kind.decode("latin-1"))
