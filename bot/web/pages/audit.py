"""The audit log (admins only): newest first, filtered by actor, action and entity, paged.

Checking the hash chain reads every entry, so the page asks for it separately (htmx loads
/audit/verify once the page is shown; without script it is a link) and the list itself
stays quick however long the log grows.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.crud import audit
from bot.models import AuditEntry
from bot.web.access import Admin, app_of
from bot.web.render import query_string, render

router = APIRouter()
Q = TypeVar("Q", SelectOfScalar[AuditEntry], SelectOfScalar[int])
PAGE_SIZE = 50
Text = Annotated[str, Query(max_length=128)]


def _filtered(query: Q, actor: str, action: str, entity: str, entity_id: str) -> Q:
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        # "case." finds every case action; a full name finds that one
        query = (
            query.where(col(AuditEntry.action).startswith(action))
            if action.endswith(".")
            else query.where(AuditEntry.action == action)
        )
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if entity_id:
        query = query.where(AuditEntry.entity_id == entity_id)
    return query


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    who: Admin,
    actor: Text = "",
    action: Text = "",
    entity: Text = "",
    entity_id: Text = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    bot = app_of(request)
    with bot.db.session() as session:
        total = session.exec(
            _filtered(
                select(func.count()).select_from(AuditEntry), actor, action, entity, entity_id
            )
        ).one()
        entries = session.exec(
            _filtered(select(AuditEntry), actor, action, entity, entity_id)
            .order_by(col(AuditEntry.id).desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        actions = session.exec(
            select(AuditEntry.action).distinct().order_by(col(AuditEntry.action))
        ).all()
        entities = session.exec(
            select(AuditEntry.entity).distinct().order_by(col(AuditEntry.entity))
        ).all()
    filters = {"actor": actor, "action": action, "entity": entity, "entity_id": entity_id}
    pages = max(1, -(-int(total) // PAGE_SIZE))
    return render(
        request,
        "audit.html",
        {
            "entries": entries,
            "total": total,
            "page": page,
            "pages": pages,
            "filters": filters,
            "actions": actions,
            "entities": entities,
            "newer": query_string({**filters, "page": page - 1 if page > 2 else None}),
            "older": query_string({**filters, "page": page + 1}),
        },
        who=who,
    )


@router.get("/audit/verify", response_class=HTMLResponse)
def verify(request: Request, who: Admin) -> HTMLResponse:
    """The chain's state: intact, or the first entry whose hash or link does not match."""
    bot = app_of(request)
    with bot.db.session() as session:
        check = audit.verify(session)
    partial = request.headers.get("hx-request") == "true"
    return render(
        request, "_audit_verify.html" if partial else "audit_verify.html", {"check": check}, who=who
    )
