"""/report: the public, mobile-first report form, and /report/add to add to a report later.

No sign-in and no JavaScript. Each form carries a signed token whose nonce is also in a
SameSite=Strict cookie (``bot.incident_reports.codes``), so another site cannot submit it
for a visitor. The body is read as it arrives (``bot.incident_reports.multipart``) and each
file streams straight into the media store, which checks its bytes and stops an oversized
one at its limit: a 2 GB upload costs one chunk of memory and a limit's worth of disk, and
the rest of the request is never read. A declared Content-Length over what the form can
hold is refused before reading anything.

Anything refused re-shows the form with what the student wrote (escaped, like every value
on these pages), and the reason; nothing is filed until the whole form is accepted.

Include it with ``web.include_router(report_form.router(bot))`` in ``create_app``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import anyio.from_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.requests import ClientDisconnect

from bot.app import App
from bot.incident_reports.codes import (
    FormTokenError,
    check_form_token,
    issue_form_token,
    new_public_id,
    report_key,
)
from bot.incident_reports.multipart import FormError, MultipartReader, Part, boundary_of
from bot.incident_reports.web import AddRefused, WebReport, add_to_report, file_web_report
from bot.media import MediaRefused, sniff
from bot.media.sniff import SNIFF_BYTES
from bot.models import MediaItem, ReportKind
from bot.web.render import render

log = logging.getLogger(__name__)

REPORT = "report"
ADD = "add"
COOKIES = {REPORT: "report_form", ADD: "report_add"}
TEMPLATES = {REPORT: "report/form.html", ADD: "report/add.html"}
FIELDS = {
    REPORT: ("token", "kind", "what", "where", "when", "who", "anonymous", "contact"),
    ADD: ("token", "reference", "code", "text"),
}
FILES_FIELD = "files"
FORM_OVERHEAD = 1 << 20  # the text fields and multipart framing, generously


@dataclass
class Received:
    fields: dict[str, str] = field(default_factory=dict)
    media: list[MediaItem] = field(default_factory=list)
    nonce: str | None = None
    problems: list[str] = field(default_factory=list)
    status: int = 200


class _Counted:
    """A part's chunks, counted, with its first bytes kept to tell why it was refused."""

    def __init__(self, part: Part) -> None:
        self.part = part
        self.size = 0
        self.head = b""

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.part.chunks():
            self.size += len(chunk)
            if len(self.head) < SNIFF_BYTES:
                self.head += chunk[: SNIFF_BYTES - len(self.head)]
            yield chunk


def router(bot: App) -> APIRouter:
    routes = APIRouter()
    settings = bot.settings

    def fresh(
        request: Request,
        purpose: str,
        context: dict[str, Any],
        *,
        status: int = 200,
        nonce: str | None = None,
    ) -> HTMLResponse:
        """The form page, with a token for ``nonce`` (a new one unless given)."""
        keep = nonce is not None
        nonce = nonce or new_public_id()
        token = issue_form_token(report_key(settings), purpose, nonce, bot.clock.now())
        response = render(
            request,
            TEMPLATES[purpose],
            {
                "token": token,
                "max_files": settings.reports.max_files,
                "max_chars": settings.reports.max_field_chars,
                "account": settings.account,
                "fields": {},
                "problems": [],
                **context,
            },
            who=None,
            status_code=status,
        )
        if not keep:
            response.set_cookie(
                COOKIES[purpose],
                nonce,
                max_age=settings.reports.form_minutes * 60,
                path="/report",
                httponly=True,
                samesite="strict",
                secure=settings.web.secure_cookies,
            )
        return response

    def refused(request: Request, purpose: str, got: Received) -> HTMLResponse:
        return fresh(
            request,
            purpose,
            {"fields": got.fields, "problems": got.problems},
            status=got.status,
            nonce=got.nonce,
        )

    @routes.get("/report", response_class=HTMLResponse)
    def report_page(request: Request) -> HTMLResponse:
        return fresh(request, REPORT, {})

    @routes.get("/report/add", response_class=HTMLResponse)
    def add_page(request: Request) -> HTMLResponse:
        return fresh(request, ADD, {})

    @routes.post("/report", response_class=HTMLResponse)
    def submit_report(request: Request) -> Response:
        got = _read_form(request, bot, REPORT)
        form = _report_from(got, settings.reports.max_field_chars)
        if got.problems or form is None or got.nonce is None:
            return refused(request, REPORT, got)
        filed = file_web_report(bot, nonce=got.nonce, form=form, media=got.media)
        return render(
            request,
            "report/received.html",
            {"filed": filed, "account": settings.account, "kind": form.kind},
            who=None,
        )  # the cookie stays: sending the same form again shows the same answer

    @routes.post("/report/add", response_class=HTMLResponse)
    def submit_addition(request: Request) -> Response:
        got = _read_form(request, bot, ADD)
        text = got.fields.get("text", "").strip()
        if not got.problems:
            for name, label in (("reference", "the reference"), ("code", "the code")):
                if not got.fields.get(name, "").strip():
                    got.problems.append(f"Please give {label}.")
            if not text and not got.media:
                got.problems.append("Please write what you want to add, or attach a file.")
            if len(text) > settings.reports.max_field_chars:
                got.problems.append(
                    f"Please keep it under {settings.reports.max_field_chars} characters."
                )
            got.status = 422 if got.problems else got.status
        if got.problems or got.nonce is None:
            return refused(request, ADD, got)
        try:
            added = add_to_report(
                bot,
                reference=got.fields["reference"],
                code=got.fields["code"],
                nonce=got.nonce,
                text=text,
                media=got.media,
            )
        except AddRefused as exc:
            got.problems.append(str(exc))
            got.status = 403
            got.fields.pop("code", None)  # never echo a code back
            return refused(request, ADD, got)
        return render(
            request,
            "report/added.html",
            {"added": added, "account": settings.account},
            who=None,
        )

    return routes


def _request_body(request: Request) -> Iterator[bytes]:
    """The request body, chunk by chunk, pulled from the event loop by this worker thread."""
    stream = request.stream()

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while True:
        chunk = anyio.from_thread.run(next_chunk)
        if chunk is None:
            return
        if chunk:
            yield chunk


def _read_form(request: Request, bot: App, purpose: str) -> Received:
    """Read the form as it arrives; files go to the media store as they stream in."""
    settings = bot.settings
    got = Received()
    limit = settings.reports.max_files * max(
        settings.media.max_image_bytes, settings.media.max_video_bytes
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        got.problems.append(
            f"The form is too large to accept ({int(declared) / (1 << 20):,.0f} MB). Photos "
            f"may be up to {settings.media.max_image_bytes >> 20} MB and videos up to "
            f"{settings.media.max_video_bytes >> 20} MB."
        )
        got.status = 413
        return got
    content_type = request.headers.get("content-type", "")
    cookie = request.cookies.get(COOKIES[purpose])
    try:
        if content_type.startswith("application/x-www-form-urlencoded"):
            _read_plain_form(request, purpose, got, cookie, bot)  # a form without files
            return _checked(got)
        reader = MultipartReader(_request_body(request), boundary_of(content_type))
        for part in reader.parts():
            if part.filename is None:
                value = part.text(limit=bot.settings.reports.max_field_chars * 4 + 64)
                _take_field(part.name, value, purpose, got, cookie, bot)
            elif part.name == FILES_FIELD and part.filename:  # an upload
                if not _take_file(part, got, bot):
                    return got  # refused: the rest of the request is not read
            else:
                part.drain()  # an empty file input, or a field this form does not have
    except FormError as exc:
        got.problems.append(f"The form could not be read: {exc}.")
        got.status = 400
    except ClientDisconnect:
        got.problems.append("The connection closed before the form arrived.")
        got.status = 400
    return _checked(got)


def _checked(got: Received) -> Received:
    if got.nonce is None and not got.problems:
        got.problems.append("Please send the form again: its security token was missing.")
        got.status = 403
    return got


def _read_plain_form(
    request: Request, purpose: str, got: Received, cookie: str | None, bot: App
) -> None:
    """A url-encoded form (no files), read up to what its fields can hold."""
    limit = len(FIELDS[purpose]) * (bot.settings.reports.max_field_chars * 12 + 64)
    body = bytearray()
    for chunk in _request_body(request):
        body += chunk
        if len(body) > limit:
            raise FormError("the form is longer than its fields allow")
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        _take_field(name, value, purpose, got, cookie, bot)


def _take_field(
    name: str, value: str, purpose: str, got: Received, cookie_nonce: str | None, bot: App
) -> None:
    # Read up to four bytes a character (UTF-8); the character limits are checked later.
    if name not in FIELDS[purpose] or name in got.fields:
        return
    got.fields[name] = value
    if name == "token":
        try:
            got.nonce = check_form_token(
                report_key(bot.settings),
                purpose,
                value.strip(),
                cookie_nonce,
                at=bot.clock.now(),
                max_age=bot.settings.reports.form_minutes * 60,
            )
        except FormTokenError as exc:
            # Keep reading the text fields, so they can be shown again; files are refused.
            got.problems.append(f"Please send the form again: {exc}. What you wrote is kept.")
            got.status = 403


def _take_file(part: Part, got: Received, bot: App) -> bool:
    """Stream one upload into the media store; False (with the reason) if refused."""
    name = part.filename or "a file"
    if got.nonce is None:
        if not got.problems:
            got.problems.append("Please send the form again: its security token was missing.")
        got.status = 403
        return False
    if len(got.media) >= bot.settings.reports.max_files:
        got.problems.append(
            f"Please attach at most {bot.settings.reports.max_files} photos or videos."
        )
        got.status = 422
        return False
    counted = _Counted(part)
    try:
        with bot.db.session() as session:
            item = bot.media.receive(session, counted, actor="web-form", at=bot.clock.now())
            session.expunge(item)
    except MediaRefused as exc:
        got.problems.append(f"{name}: {exc}.")
        got.status = 413 if _too_large(counted, bot) else 422
        return False
    got.media.append(item)
    return True


def _too_large(counted: _Counted, bot: App) -> bool:
    try:
        return counted.size > bot.media.limit(sniff(counted.head))
    except MediaRefused:
        return False


def _report_from(got: Received, max_chars: int) -> WebReport | None:
    """The report the fields describe, or None with the problems listed."""
    if got.problems:
        return None
    fields = got.fields
    what = fields.get("what", "").strip()
    if not what:
        got.problems.append("Please tell us what happened.")
    for name in ("what", "where", "when", "who", "contact"):
        if len(fields.get(name, "")) > max_chars:
            got.problems.append(f"Please keep each answer under {max_chars} characters.")
            break
    kind = fields.get("kind", ReportKind.INCIDENT.value)
    if kind not in (ReportKind.INCIDENT.value, ReportKind.INTELLIGENCE.value):
        got.problems.append("Please choose what kind of report this is.")
    anonymous = fields.get("anonymous", "")
    if anonymous not in ("yes", "no"):
        got.problems.append("Please say whether you want to stay anonymous.")
    if got.problems:
        got.status = 422
        return None
    return WebReport(
        kind=ReportKind(kind),
        what=what,
        where=fields.get("where", ""),
        when=fields.get("when", ""),
        who=fields.get("who", ""),
        anonymous=anonymous == "yes",
        contact="" if anonymous == "yes" else fields.get("contact", ""),
    )
