"""Deciding what a file is from its first bytes, never from its name or declared type.

Photos are JPEG, PNG or HEIC; videos are MP4 or QuickTime (MOV). HEIC, MP4 and MOV are all
ISO base media files whose first box, ``ftyp``, names a major brand and compatible brands;
the brands say which of the three it is. Anything else is refused here, before more than
``SNIFF_BYTES`` have been read, with a reason that names what it looks like instead.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bot.media.errors import MediaRefused
from bot.messages import AttachmentKind

SNIFF_BYTES = 256  # enough for any real ftyp box's brands; well under every size limit


@dataclass(frozen=True)
class MediaFormat:
    media_type: str
    kind: AttachmentKind
    extension: str
    label: str
    pillow_formats: tuple[str, ...] = ()  # the Pillow plugins allowed to open it (images)


JPEG = MediaFormat("image/jpeg", AttachmentKind.IMAGE, "jpg", "JPEG photo", ("JPEG", "MPO"))
PNG = MediaFormat("image/png", AttachmentKind.IMAGE, "png", "PNG image", ("PNG",))
HEIC = MediaFormat("image/heic", AttachmentKind.IMAGE, "heic", "HEIC photo", ("HEIF",))
MP4 = MediaFormat("video/mp4", AttachmentKind.VIDEO, "mp4", "MP4 video")
MOV = MediaFormat("video/quicktime", AttachmentKind.VIDEO, "mov", "QuickTime video")
FORMATS = {f.media_type: f for f in (JPEG, PNG, HEIC, MP4, MOV)}

ACCEPTED = "send a JPEG, PNG or HEIC photo, or an MP4 or MOV video"

HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1"}
AVIF_BRANDS = {b"avif", b"avis"}
MP4_BRANDS = {
    b"isom",
    b"iso2",
    b"iso3",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"M4V ",
    b"MSNV",
    b"XAVC",
    b"mmp4",
    b"3gp4",
    b"3gp5",
    b"3gp6",
    b"3g2a",
}
AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P "}

# What commonly arrives renamed as a photo, so the refusal can say what it is instead.
LOOKALIKES: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"\xcf\xfa\xed\xfe", "a macOS program"),
    (b"\xca\xfe\xba\xbe", "a macOS or Java program"),
    (b"#!", "a script"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive or Office document"),
    (b"GIF8", "a GIF image, which is not accepted"),
    (b"BM", "a BMP image, which is not accepted"),
    (b"II*\x00", "a TIFF image, which is not accepted"),
    (b"MM\x00*", "a TIFF image, which is not accepted"),
)


def sniff(head: bytes) -> MediaFormat:
    """The accepted format ``head`` (the file's first bytes) begins, or MediaRefused."""
    if not head:
        raise MediaRefused(f"the file is empty (0 bytes); {ACCEPTED}")
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _from_brands(head)
    raise MediaRefused(f"not a photo or video (it looks like {_describe(head)}); {ACCEPTED}")


def _from_brands(head: bytes) -> MediaFormat:
    (size,) = struct.unpack(">I", head[:4])
    if size < 16 and size != 1:
        raise MediaRefused(f"the file's type box is damaged ({size} bytes long); {ACCEPTED}")
    major = head[8:12]
    end = min(size, len(head)) if size != 1 else 16
    brands = {major} | {head[i : i + 4] for i in range(16, end - 3, 4)}
    if major == b"qt  ":
        return MOV
    if brands & AVIF_BRANDS:
        raise MediaRefused(f"AVIF images are not accepted; {ACCEPTED}")
    if brands & HEIC_BRANDS:
        return HEIC
    if major in AUDIO_BRANDS:
        raise MediaRefused(f"audio recordings are not accepted; {ACCEPTED}")
    if brands & MP4_BRANDS:
        return MP4
    name = major.decode("latin-1").strip() or "blank"
    raise MediaRefused(f"a media file of an unsupported kind (brand {name!r}); {ACCEPTED}")


def _describe(head: bytes) -> str:
    for magic, what in LOOKALIKES:
        if head.startswith(magic):
            return what
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] == b"<":
        return "a web page or XML document"
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
        return "plain text"
    return "data of an unknown kind"
