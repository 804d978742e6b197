"""Redaction of personal data from text that leaves the system (logs, exports, partners).

Removes phone numbers, emails, student numbers, UK vehicle registrations, postcodes and
@handles, replacing each with a bracketed label so the reader still sees that something
was there. Patterns are deliberately broad: a false redaction costs little, a missed one
is a data breach.
"""

from __future__ import annotations

import re

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("[email]", re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)),
    ("[handle]", re.compile(r"(?<![\w@])@\w{1,30}\b")),
    # UK phones: 07700 900123, +44 7700 900123, 01772 123456, (01772) 123 456, 0800 555 111
    (
        "[phone]",
        re.compile(r"(?<!\w)(?:\+44\s?\(?0?\)?|\(?0)\d{2,4}\)?[\s-]?\d{3,4}[\s-]?\d{3,4}(?!\w)"),
    ),
    # UK postcodes: PR1 2HE, PR12HE, M1 1AE, SW1A 1AA
    ("[postcode]", re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b", re.IGNORECASE)),
    # UK vehicle registrations: current (AB12 CDE, any case) and, in capitals only, the older
    # prefix (A123 BCD) and suffix (ABC 123D) styles, which otherwise catch road names.
    ("[vehicle]", re.compile(r"\b[A-Z]{2}\d{2}\s?[A-Z]{3}\b", re.IGNORECASE)),
    ("[vehicle]", re.compile(r"\b(?:[A-Z]\d{1,3}\s?[A-Z]{3}|[A-Z]{3}\s?\d{1,3}[A-Z])\b")),
    # University student numbers: G-prefixed or 8-digit ids
    ("[student-number]", re.compile(r"\b(?:G\d{7,8}|\d{8})\b", re.IGNORECASE)),
]


def redact(text: str) -> str:
    for label, pattern in _PATTERNS:
        text = pattern.sub(label, text)
    return text
