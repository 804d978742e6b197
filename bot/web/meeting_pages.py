"""/meet: students book a meeting with a campus officer, with no sign-in.

- GET /meet lists the open slots (London time, the place, the officer's first name only)
  and a form to book one. The form carries a signed token whose nonce is also in a
  SameSite=Strict cookie (``bot.incident_reports.codes``), so another site cannot book
  for a visitor; a form from another Origin is refused outright.
- The database decides who gets a slot (``bot.meetings.book``): a slot taken meanwhile
  re-shows the list with "just taken, pick another" and what the student typed.
- The confirmation is the booking's private page, /meet/manage/<code>: the time and place,
  the .ics invitation, and forms to cancel or move to another slot. The code in its
  address is the only key to it (``bot.meetings.manage_code``), so it also stands as the
  CSRF token of those forms.
- A student who gives an email is reminded a day before (``bot.meeting_reminders``);
  without one, the page asks them to save the invitation.

Everything a student typed is shown autoescaped. Include it with
``web.include_router(meeting_pages.router(bot))`` in ``create_app``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from bot import meetings
from bot.app import App
from bot.errors import BotError
from bot.incident_reports.codes import (
    FormTokenError,
    check_form_token,
    issue_form_token,
    new_public_id,
    report_key,
)
from bot.models import Booking, BookingStatus, MeetingSlot
from bot.web.render import render
from channels.base import read_capped

PURPOSE = "meeting"
COOKIE = "meeting_form"
FORM_MINUTES = 60
MAX_FORM_BYTES = 8 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
_EMAIL = re.compile(r"[^@\s<>\"',;:()\[\]\\]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9/ -]{0,31}")
LIMITS = {"name": 128, "email": 254, "reference": 32}


@dataclass(frozen=True)
class ShownSlot:
    id: int
    starts_at: datetime
    ends_at: datetime
    place: str
    officer: str
    kind: str


@dataclass
class Sent:
    fields: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _shown(slot: MeetingSlot) -> ShownSlot:
    return ShownSlot(
        id=slot.id or 0,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        place=slot.place,
        officer=meetings.first_name(slot.officer),
        kind=slot.kind,
    )


def _foreign_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()


async def _form_fields(request: Request) -> dict[str, str] | str:
    """The posted fields (first of each), or why they cannot be read."""
    if _foreign_origin(request):
        return "Bookings can only be made from this site."
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        return "Please use the form on this page."
    body = await read_capped(request, MAX_FORM_BYTES)
    if body is None:
        return "The form is longer than its fields allow."
    fields: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(name, value.strip())
    return fields


def _check(fields: Mapping[str, str]) -> list[str]:
    problems = [
        f"The {name} is too long (at most {limit} characters)."
        for name, limit in LIMITS.items()
        if len(fields.get(name, "")) > limit
    ]
    email = fields.get("email", "")
    if email and not _EMAIL.fullmatch(email):
        problems.append("That email address does not look right; check it or leave it empty.")
    reference = fields.get("reference", "")
    if reference and not _REFERENCE.fullmatch(reference):
        problems.append("A case reference is letters, numbers and dashes, like UCC-2026-000123.")
    if not fields.get("slot", "").isdigit():
        problems.append("Please pick a time.")
    return problems


def router(bot: App) -> APIRouter:
    routes = APIRouter(prefix="/meet")
    settings = bot.settings

    def key() -> bytes:
        return report_key(settings)

    def manage_url(booking: Booking) -> str:
        code = meetings.manage_code(key(), booking.manage_id or "")
        return f"{settings.public_base_url.rstrip('/')}/meet/manage/{code}"

    def notice(request: Request, title: str, message: str, status: int) -> HTMLResponse:
        return render(
            request,
            "meetings/notice.html",
            {"title": title, "message": message},
            who=None,
            status_code=status,
        )

    def slot_list(session: Session) -> list[ShownSlot]:
        return [_shown(s) for s in meetings.open_slots(session, at=bot.clock.now())]

    def booking_form(
        request: Request, sent: Sent | None = None, *, status: int = 200
    ) -> HTMLResponse:
        nonce = new_public_id()
        with bot.db.session() as session:
            slots = slot_list(session)
        response = render(
            request,
            "meetings/slots.html",
            {
                "slots": slots,
                "token": issue_form_token(key(), PURPOSE, nonce, bot.clock.now()),
                "fields": sent.fields if sent else {},
                "problems": sent.problems if sent else [],
                "team": settings.account.team_name,
            },
            who=None,
            status_code=status,
        )
        response.set_cookie(
            COOKIE,
            nonce,
            max_age=FORM_MINUTES * 60,
            path="/meet",
            httponly=True,
            samesite="strict",
            secure=settings.web.secure_cookies,
        )
        return response

    @routes.get("", response_class=HTMLResponse)
    def slots_page(request: Request) -> HTMLResponse:
        return booking_form(request)

    def take(request: Request, fields: dict[str, str]) -> Response:
        sent = Sent(fields={k: fields.get(k, "") for k in ("slot", *LIMITS)})
        try:
            check_form_token(
                key(),
                PURPOSE,
                fields.get("token", ""),
                request.cookies.get(COOKIE),
                at=bot.clock.now(),
                max_age=FORM_MINUTES * 60,
            )
        except FormTokenError as exc:
            sent.problems.append(f"Nothing was booked: {exc}. Please pick your time again.")
            return booking_form(request, sent, status=403)
        sent.problems = _check(fields)
        if sent.problems:
            return booking_form(request, sent, status=422)
        manage_id = meetings.new_manage_id()
        try:
            with bot.db.session() as session:
                booking = meetings.book(
                    session,
                    slot_id=int(fields["slot"]),
                    channel=meetings.WEB,
                    contact_id=manage_id,  # no personal data: the page's own id
                    at=bot.clock.now(),
                    name=fields.get("name") or None,
                    case_reference=fields.get("reference") or None,
                    email=fields.get("email") or None,
                    manage_id=manage_id,
                )
                code = meetings.manage_code(key(), booking.manage_id or "")
        except meetings.SlotTaken:
            sent.problems.append("Sorry, that time was just taken. Please pick another.")
            sent.fields["slot"] = ""
            return booking_form(request, sent, status=409)
        except BotError:
            sent.problems.append("That time is no longer available. Please pick another.")
            sent.fields["slot"] = ""
            return booking_form(request, sent, status=409)
        return RedirectResponse(f"/meet/manage/{code}?booked=1", status_code=303)

    @routes.post("", response_class=HTMLResponse)
    async def book(request: Request) -> Response:
        fields = await _form_fields(request)
        if isinstance(fields, str):
            return notice(request, "Not booked", fields, 403)
        return await run_in_threadpool(take, request, fields)

    def find(session: Session, code: str) -> tuple[Booking, MeetingSlot] | None:
        booking = meetings.booking_for_code(session, key(), code)
        slot = session.get(MeetingSlot, booking.slot_id) if booking else None
        return (booking, slot) if booking and slot else None

    def unknown(request: Request) -> HTMLResponse:
        return notice(
            request,
            "Booking not found",
            "This link does not lead to a booking. Check it was copied whole.",
            404,
        )

    @routes.get("/manage/{code}", response_class=HTMLResponse)
    def manage_page(request: Request, code: str, booked: int = 0) -> HTMLResponse:
        with bot.db.session() as session:
            found = find(session, code)
            if found is None:
                return unknown(request)
            booking, slot = found
            others = [s for s in slot_list(session) if s.id != slot.id]
            return render(
                request,
                "meetings/manage.html",
                {
                    "booking": booking,
                    "slot": _shown(slot),
                    "live": booking.status == BookingStatus.BOOKED,
                    "others": others,
                    "code": code,
                    "link": manage_url(booking),
                    "booked": bool(booked),
                    "problem": request.query_params.get("problem", ""),
                    "team": settings.account.team_name,
                },
                who=None,
            )

    @routes.get("/manage/{code}/invitation.ics")
    def invitation(code: str) -> Response:
        with bot.db.session() as session:
            found = find(session, code)
            if found is None:
                return Response("No such booking.", status_code=404, media_type="text/plain")
            booking, slot = found
            ics = meetings.invitation(
                slot, booking, team=settings.account.team_name, manage_url=manage_url(booking)
            )
        return Response(
            ics,
            media_type="text/calendar; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="meeting.ics"'},
        )

    def change(request: Request, code: str, action: str, fields: dict[str, str]) -> Response:
        now = bot.clock.now()
        try:
            with bot.db.session() as session:
                found = find(session, code)
                if found is None:
                    return unknown(request)
                booking = found[0]
                if booking.status != BookingStatus.BOOKED:
                    raise BotError("this booking was already cancelled")
                if action == "cancel":
                    meetings.cancel(session, booking_id=booking.id or 0, by="student", at=now)
                else:
                    if not fields.get("slot", "").isdigit():
                        raise BotError("please pick a new time")
                    meetings.rebook(
                        session,
                        booking_id=booking.id or 0,
                        new_slot_id=int(fields["slot"]),
                        by="student",
                        at=now,
                    )
        except meetings.SlotTaken:
            return _back(code, "taken")
        except BotError:
            return _back(code, "unavailable")
        return RedirectResponse(f"/meet/manage/{code}", status_code=303)

    @routes.post("/manage/{code}/{action}")
    async def manage(request: Request, code: str, action: str) -> Response:
        if action not in ("cancel", "move"):
            return unknown(request)
        fields = await _form_fields(request)
        if isinstance(fields, str):
            return notice(request, "Not changed", fields, 403)
        return await run_in_threadpool(change, request, code, action, fields)

    return routes


def _back(code: str, problem: str) -> Response:
    return RedirectResponse(f"/meet/manage/{code}?problem={problem}", status_code=303)
