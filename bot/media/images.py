"""Photos: proving an upload decodes as what its bytes claim, and making clean copies.

Verification decodes every pixel, because a truncated or corrupt photo can have a perfectly
good header. The pixel limit is checked from the header before decoding, so a small file
that would expand to gigabytes (a decompression bomb) is refused without being expanded.

An outbound copy is re-encoded from the pixels alone, turned upright first: EXIF (GPS,
camera, times), XMP, comments and text chunks are all dropped. Only the colour profile and
PNG transparency are kept, because without them the picture itself would change.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

import pillow_heif
from PIL import ExifTags, Image, ImageOps

from bot.media.errors import MediaRefused
from bot.media.sniff import HEIC, JPEG, PNG, MediaFormat

pillow_heif.register_heif_opener()

KEEP_INFO = ("icc_profile", "transparency")
SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    JPEG.media_type: {"format": "JPEG", "quality": 95},
    PNG.media_type: {"format": "PNG"},
    HEIC.media_type: {"format": "HEIF", "quality": 90},
}
XMP_GPS_MARKERS = (b"GPSLatitude", b"GPSLongitude", b"exif:GPS")


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int
    has_location: bool


def check_image(path: Path, fmt: MediaFormat, *, max_pixels: int) -> ImageFacts:
    """Refuse anything Pillow cannot fully decode as ``fmt``; say whether it has location."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=fmt.pillow_formats) as image:
                image.verify()  # structure and checksums (PNG CRCs)
            with Image.open(path, formats=fmt.pillow_formats) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise MediaRefused(
                        f"the {fmt.label} is {width}x{height} pixels, more than the "
                        f"{max_pixels:,} allowed"
                    )
                image.load()
                return ImageFacts(width, height, _has_location(image))
    except MediaRefused:
        raise
    except Exception as exc:  # any decoder failure on hostile bytes means the same thing
        raise MediaRefused(
            f"the {fmt.label} is damaged or incomplete and cannot be opened ({_reason(exc)})"
        ) from None


def clean_copy(source: BinaryIO, fmt: MediaFormat) -> bytes:
    """The photo re-encoded upright with no metadata, in its own format."""
    with Image.open(source, formats=fmt.pillow_formats) as image:
        image.load()
        upright = ImageOps.exif_transpose(image)
        # copy() builds a fresh Image: no EXIF object cached from the transpose survives
        clean = upright.copy()
        clean.info = {key: upright.info[key] for key in KEEP_INFO if key in upright.info}
        options = dict(SAVE_OPTIONS[fmt.media_type])
        if "icc_profile" in clean.info:
            options["icc_profile"] = clean.info["icc_profile"]
        out = BytesIO()
        clean.save(out, **options)
        return out.getvalue()


def _has_location(image: Image.Image) -> bool:
    gps = image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    if gps:
        return True
    xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8", "replace")
    return any(marker in xmp for marker in XMP_GPS_MARKERS)


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]
