"""The reports' secrets: the key, each report's code, and the web forms' signed tokens.

A report's code is an HMAC of its random ``public_id`` under the key, so nothing that
reveals it is stored: a copy of the database alone does not let anyone add to a report,
and the same code can be shown again on a resubmitted form. Eight characters from an
alphabet without look-alikes (no 0/O, 1/I) give 40 bits; the add page also locks a
reference after a few wrong codes.

A form token binds a random nonce (also kept in a SameSite=Strict cookie) to the time the
form was served. A cross-site page can neither read the token nor send the cookie, so an
anonymous form is CSRF-safe without a session; the nonce also makes a resubmission of the
same form a duplicate rather than a second report.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import struct
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from bot.config import Settings
from bot.errors import BotError

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_CHARS = 8
KEY_FILE = Path("keys") / "reports.key"
_NONCE_BYTES = 16


class FormTokenError(BotError):
    """The form's token is missing, forged, for another form, or too old."""


def new_public_id() -> str:
    return secrets.token_hex(_NONCE_BYTES)


def report_key(settings: Settings) -> bytes:
    configured = settings.reports.secret_key
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode()
    return _key_file((settings.var_dir / KEY_FILE).resolve())


@lru_cache(maxsize=4)
def _key_file(path: Path) -> bytes:
    """Read the generated key, creating it (once, atomically, private) if missing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        if len(key) < 32:
            raise BotError(f"{path} is damaged (too short); delete it to make a new key") from None
        return key
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_hex(32).encode())
        out.flush()
        os.fsync(out.fileno())
    return path.read_bytes().strip()


def code_for(key: bytes, public_id: str) -> str:
    """``K7QM-4XZP``: what a student types, with the reference, to add to a report."""
    digest = hmac.new(key, f"report-code|{public_id}".encode(), hashlib.sha256).digest()
    chars = "".join(CODE_ALPHABET[b % len(CODE_ALPHABET)] for b in digest[:CODE_CHARS])
    return f"{chars[:4]}-{chars[4:]}"


def normalise_code(given: str) -> str:
    cleaned = re.sub(r"[\s-]", "", given.upper())
    return f"{cleaned[:4]}-{cleaned[4:]}" if len(cleaned) == CODE_CHARS else cleaned


def code_matches(key: bytes, public_id: str, given: str) -> bool:
    return hmac.compare_digest(code_for(key, public_id), normalise_code(given[:64]))


def _mac(key: bytes, purpose: str, payload: bytes) -> bytes:
    return hmac.new(key, purpose.encode() + b"|" + payload, hashlib.sha256).digest()


def issue_form_token(key: bytes, purpose: str, nonce: str, at: datetime) -> str:
    payload = bytes.fromhex(nonce) + struct.pack(">q", int(at.timestamp()))
    raw = payload + _mac(key, purpose, payload)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def check_form_token(
    key: bytes, purpose: str, token: str, cookie_nonce: str | None, *, at: datetime, max_age: int
) -> str:
    """The form's nonce, if the token is genuine, for this form, this browser and recent."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise FormTokenError("the form's security token is not valid") from None
    if len(raw) != _NONCE_BYTES + 8 + 32:
        raise FormTokenError("the form's security token is not valid")
    payload, mac = raw[: _NONCE_BYTES + 8], raw[_NONCE_BYTES + 8 :]
    if not hmac.compare_digest(mac, _mac(key, purpose, payload)):
        raise FormTokenError("the form's security token is not valid")
    nonce = payload[:_NONCE_BYTES].hex()
    if cookie_nonce is None or not hmac.compare_digest(nonce, cookie_nonce):
        raise FormTokenError("the form was not opened in this browser (or cookies are blocked)")
    (issued,) = struct.unpack(">q", payload[_NONCE_BYTES:])
    age = at.timestamp() - issued
    if age < -300 or age > max_age:
        raise FormTokenError("the form was open for too long")
    return nonce
