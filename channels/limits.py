"""How long a text is as each platform counts it.

X counts "weighted" characters: most Latin, Greek, Cyrillic and common punctuation count 1,
everything else (CJK, most emoji) counts 2, and every URL counts 23 whatever its length.
This follows twitter-text's v3 configuration for code points; the Twitter issue tests it
against the official conformance cases.
"""

from __future__ import annotations

import re

TWEET_LIMIT = 280
URL_WEIGHT = 23
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
LIMITS = {"twitter": TWEET_LIMIT, "facebook": 63_206, "in_the_know": 5_000}


def _weight(char: str) -> int:
    point = ord(char)
    return 1 if any(lo <= point <= hi for lo, hi in _LIGHT_RANGES) else 2


def weighted_length(text: str) -> int:
    urls = _URL.findall(text)
    rest = _URL.sub("", text)
    return URL_WEIGHT * len(urls) + sum(_weight(c) for c in rest)


def length_for(channel: str, text: str) -> int:
    return weighted_length(text) if channel == "twitter" else len(text)


def fits(channel: str, text: str) -> bool:
    return length_for(channel, text) <= LIMITS.get(channel, TWEET_LIMIT)
