"""A case: its conversation, its tags, and what an officer does with it.

Everything a student sent is shown as text (escaped, ``dir="auto"`` for right-to-left
scripts). Attachments are listed, never embedded as sent: a photo is shown only from the
media store, whose bytes were checked on the way in, with its proven content type and
``nosniff``; a platform URL with no stored copy is shown as plain text, not a link.

Every action goes through `bot.casework`, which holds the rules and writes the audit log.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlmodel import col, select
from starlette.background import BackgroundTask

from bot import casework
from bot.errors import BotError
from bot.media import FORMATS, MediaError
from bot.media.storage import KEY
from bot.models import (
    Correction,
    MediaItem,
    Message,
    MessageAttachment,
    OutboundMessage,
    Priority,
)
from bot.web.access import (
    AdminAction,
    CaseworkAction,
    Caseworker,
    Staff,
    app_of,
)
from bot.web.auth import SignedIn
from bot.web.render import render
from classifiers.base import INTENTS, SCENARIOS

router = APIRouter()
# Shown inline only in these types, which every browser renders; others are downloaded.
INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
CHUNK = 256 * 1024
DONE = {
    "assigned": "Case assigned.",
    "replied": "Reply queued: it goes out with the next delivery round.",
    "escalated": "Priority raised.",
    "closed": "Case closed.",
    "corrected": "Correction saved; it will be used as a training example.",
}


@dataclass(frozen=True)
class ShownAttachment:
    attachment: MessageAttachment
    stored: MediaItem | None

    @property
    def inline(self) -> bool:
        return self.stored is not None and self.stored.media_type in INLINE_IMAGES


@dataclass(frozen=True)
class Entry:
    """One line of the conversation: a student's message or one of our replies."""

    at: datetime
    message: Message | None = None
    reply: OutboundMessage | None = None
    attachments: tuple[ShownAttachment, ...] = ()
    correction: Correction | None = None

    @property
    def scores(self) -> list[tuple[str, float]]:
        if self.message is None:
            return []
        return sorted(self.message.scores.items(), key=lambda kv: -kv[1])[:12]


def _case_context(request: Request, who: SignedIn, case_id: int) -> dict[str, Any]:
    bot = app_of(request)
    with bot.db.session() as session:
        try:
            case = casework.get_case(session, case_id)
        except casework.CaseworkError:
            raise HTTPException(status_code=404, detail=f"no case {case_id}") from None
        messages = casework.messages_of(session, case_id)
        ids = [m.id for m in messages if m.id is not None]
        attachments = list(
            session.exec(
                select(MessageAttachment)
                .where(col(MessageAttachment.message_id).in_(ids))
                .order_by(col(MessageAttachment.id))
            )
        )
        hashes = {a.sha256 for a in attachments if a.sha256}
        stored = {
            m.sha256: m
            for m in session.exec(select(MediaItem).where(col(MediaItem.sha256).in_(hashes)))
        }
        corrections = casework.latest_corrections(session, ids)
        replies = casework.replies_of(session, case_id)
        caseworkers = casework.caseworkers(session)
    by_message: dict[int, list[ShownAttachment]] = {}
    for a in attachments:
        by_message.setdefault(a.message_id, []).append(
            ShownAttachment(a, stored.get(a.sha256) if a.sha256 else None)
        )
    entries = [
        Entry(
            at=m.received_at,
            message=m,
            attachments=tuple(by_message.get(m.id or 0, ())),
            correction=corrections.get(m.id or 0),
        )
        for m in messages
    ] + [Entry(at=r.created_at, reply=r) for r in replies]
    entries.sort(key=lambda e: (e.at, e.reply is not None))
    order = list(Priority)
    return {
        "case": case,
        "entries": entries,
        "caseworkers": caseworkers,
        "canned": casework.canned_responses(),
        "higher": order[: order.index(Priority(case.priority))],
        "scenarios": SCENARIOS,
        "intents": INTENTS,
        "overdue": case.first_human_reply_at is None and case.sla_due_at < bot.clock.now(),
    }


def _show(
    request: Request,
    who: SignedIn,
    case_id: int,
    *,
    error: str | None = None,
    status_code: int = 200,
    reply_text: str = "",
    chosen: str = "",
) -> HTMLResponse:
    context = _case_context(request, who, case_id)
    context.update(
        error=error,
        done=DONE.get(request.query_params.get("done", "")),
        reply_text=reply_text,
        chosen=chosen,
    )
    return render(request, "case.html", context, who=who, status_code=status_code)


def _canned_text(request: Request, who: SignedIn, case_id: int, name: str) -> str:
    bot = app_of(request)
    with bot.db.session() as session:
        case = casework.get_case(session, case_id)
        return casework.render_canned(
            name, case=case, officer=who.user.display_name, account=bot.settings.account
        )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request,
    who: Staff,
    case_id: int,
    canned: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    """``?canned=name`` fills the reply box with that response (the page works without JS)."""
    if not canned:
        return _show(request, who, case_id)
    try:
        text = _canned_text(request, who, case_id, canned)
    except casework.CaseworkError as exc:
        return _show(request, who, case_id, error=str(exc), status_code=404)
    return _show(request, who, case_id, reply_text=text, chosen=canned)


@router.get("/cases/{case_id}/canned", response_class=HTMLResponse)
def canned_partial(
    request: Request,
    who: Caseworker,
    case_id: int,
    canned: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    """The reply box filled with a canned response, for htmx to swap in."""
    try:
        text = _canned_text(request, who, case_id, canned) if canned else ""
    except casework.CaseworkError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return render(request, "_reply_box.html", {"reply_text": text, "chosen": canned}, who=who)


def _act(request: Request, who: SignedIn, case_id: int, done: str, action: Any) -> Response:
    """Run one casework action in its own transaction; show the rule's refusal if any."""
    bot = app_of(request)
    try:
        with bot.db.session() as session:
            action(session, bot.clock.now())
    except casework.CaseworkError as exc:
        return _show(request, who, case_id, error=str(exc), status_code=409)
    return RedirectResponse(f"/cases/{case_id}?done={done}", status_code=303)


@router.post("/cases/{case_id}/assign")
def assign(
    request: Request,
    who: CaseworkAction,
    case_id: int,
    to: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """``to`` empty: take the case yourself."""
    target = to or who.user.username
    return _act(
        request,
        who,
        case_id,
        "assigned",
        lambda s, at: casework.assign(s, case_id, to=target, by=who.user.username, at=at),
    )


@router.post("/cases/{case_id}/reply")
def reply(
    request: Request,
    who: CaseworkAction,
    case_id: int,
    text: Annotated[str, Form(max_length=10_000)] = "",
    canned: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    bot = app_of(request)
    try:
        with bot.db.session() as session:
            casework.reply(
                session,
                case_id,
                text=text,
                template=canned or None,
                by=who.user.username,
                at=bot.clock.now(),
            )
    except casework.CaseworkError as exc:  # keep what the officer wrote
        return _show(
            request, who, case_id, error=str(exc), status_code=409, reply_text=text, chosen=canned
        )
    return RedirectResponse(f"/cases/{case_id}?done=replied", status_code=303)


@router.post("/cases/{case_id}/escalate")
def escalate(
    request: Request,
    who: CaseworkAction,
    case_id: int,
    priority: Annotated[str, Form(max_length=2)] = "",
) -> Response:
    sla = app_of(request).settings.sla
    return _act(
        request,
        who,
        case_id,
        "escalated",
        lambda s, at: casework.escalate(
            s, case_id, to=priority or None, by=who.user.username, at=at, sla=sla
        ),
    )


@router.post("/cases/{case_id}/close")
def close(request: Request, who: CaseworkAction, case_id: int) -> Response:
    return _act(
        request,
        who,
        case_id,
        "closed",
        lambda s, at: casework.close(s, case_id, by=who.user.username, at=at),
    )


@router.post("/cases/{case_id}/messages/{message_id}/correct")
def correct(
    request: Request,
    who: CaseworkAction,
    case_id: int,
    message_id: int,
    intent: Annotated[str, Form(max_length=32)],
    scenarios: Annotated[list[str] | None, Form()] = None,
    urgent: Annotated[bool, Form()] = False,
    risk: Annotated[bool, Form()] = False,
) -> Response:
    bot = app_of(request)
    with bot.db.session() as session:
        message = session.get(Message, message_id)
        if message is None or message.case_id != case_id:
            raise HTTPException(status_code=404, detail=f"case {case_id} has no such message")
    return _act(
        request,
        who,
        case_id,
        "corrected",
        lambda s, at: casework.correct(
            s,
            message_id,
            scenarios=scenarios or [],
            urgent=urgent,
            risk=risk,
            intent=intent,
            by=who.user.username,
            at=at,
            sla=bot.settings.sla,
        ),
    )


@router.get("/cases/{case_id}/media/{sha256}")
def media(request: Request, who: Caseworker, case_id: int, sha256: str) -> Response:
    """A stored photo or video of this case: its proven type, never sniffed, never scripted.

    Originals keep their location data, so only caseworkers see them, and each view is
    written to the audit log by the media store.
    """
    if not KEY.fullmatch(sha256):
        raise HTTPException(status_code=404, detail="no such media")
    bot = app_of(request)
    with bot.db.session() as session:
        belongs = session.exec(
            select(MessageAttachment.id)
            .join(Message, col(Message.id) == col(MessageAttachment.message_id))
            .where(Message.case_id == case_id, MessageAttachment.sha256 == sha256)
        ).first()
        if belongs is None:
            raise HTTPException(status_code=404, detail="no such media in this case")
        try:
            item = bot.media.get(session, sha256)
            stream = bot.media.open_original(
                session, sha256, actor=who.user.username, at=bot.clock.now()
            )
        except MediaError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
    fmt = FORMATS.get(item.media_type)
    extension = fmt.extension if fmt else "bin"
    disposition = "inline" if item.media_type in INLINE_IMAGES else "attachment"

    def chunks() -> Iterator[bytes]:
        yield from iter(lambda: stream.read(CHUNK), b"")

    return StreamingResponse(
        chunks(),
        media_type=item.media_type,
        background=BackgroundTask(stream.close),
        headers={
            "Content-Disposition": f'{disposition}; filename="{sha256[:16]}.{extension}"',
            "Content-Length": str(item.size),
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


@router.post("/corrections.jsonl")
def export_corrections(request: Request, who: AdminAction) -> Response:
    """Every correction in force, as training examples (personal details redacted)."""
    bot = app_of(request)
    buffer = io.StringIO()
    try:
        with bot.db.session() as session:
            casework.export_corrections(session, buffer, by=who.user.username, at=bot.clock.now())
    except (BotError, ValueError) as exc:
        raise HTTPException(status_code=500, detail=f"export failed: {exc}") from exc
    return Response(
        buffer.getvalue(),
        media_type="application/x-ndjson; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="corrections.jsonl"'},
    )
