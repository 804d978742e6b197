"""The triage inbox: one row per case, the most serious first, refreshed every 15 seconds.

The filters live in the URL, so a refresh (and the automatic one, which fetches only the
rows) keeps them, and a filtered view can be bookmarked or shared with a colleague.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import ColumnElement, String, cast, func
from sqlmodel import Session, col, select

from bot.alerts import alerts_for
from bot.models import Case, CaseStatus, Message
from bot.web.access import Staff, StaffPolling, app_of
from bot.web.auth import SignedIn
from bot.web.render import query_string, render
from classifiers.base import SCENARIOS

router = APIRouter()
PAGE_SIZE = 100
STATUSES = ("open", "all", *(s.value for s in CaseStatus))
Text = Annotated[str, Query(max_length=128)]


class BadFilter(ValueError):
    """A filter value the inbox does not know; the page says which."""


@dataclass(frozen=True)
class Filters:
    channel: str = ""
    scenario: str = ""
    urgent: bool = False
    risk: bool = False
    status: str = "open"
    assignee: str = ""  # "", "me", "none" or a user name
    page: int = 1

    def check(self) -> None:
        if self.scenario and self.scenario not in SCENARIOS:
            raise BadFilter(f"unknown scenario {self.scenario!r}")
        if self.status not in STATUSES:
            raise BadFilter(f"unknown status {self.status!r}")

    def query(self, *, page: int | None = None) -> str:
        return query_string(
            {
                "channel": self.channel,
                "scenario": self.scenario,
                "urgent": "1" if self.urgent else "",
                "risk": "1" if self.risk else "",
                "status": "" if self.status == "open" else self.status,
                "assignee": self.assignee,
                "page": page if page is not None and page > 1 else None,
            }
        )


def _filters(
    channel: Text = "",
    scenario: Text = "",
    urgent: Text = "",
    risk: Text = "",
    status: Text = "open",
    assignee: Text = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Filters:
    return Filters(
        channel=channel,
        scenario=scenario,
        urgent=urgent not in ("", "0"),
        risk=risk not in ("", "0"),
        status=status or "open",
        assignee=assignee,
        page=page,
    )


InboxFilters = Annotated[Filters, Depends(_filters)]


def _conditions(f: Filters, me: str) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if f.channel:
        found.append(col(Case.channel) == f.channel)
    if f.scenario:
        # JSON lists are stored as text on both databases: ["theft", "drugs"]
        found.append(cast(Case.scenarios, String).like(f'%"{f.scenario}"%'))
    if f.urgent:
        found.append(col(Case.urgent).is_(True))
    if f.risk:
        found.append(col(Case.risk).is_(True))
    if f.status == "open":
        found.append(col(Case.status) != CaseStatus.CLOSED)
    elif f.status != "all":
        found.append(col(Case.status) == f.status)
    if f.assignee == "me":
        found.append(col(Case.assignee) == me)
    elif f.assignee == "none":
        found.append(col(Case.assignee).is_(None))
    elif f.assignee:
        found.append(col(Case.assignee) == f.assignee)
    return found


@dataclass(frozen=True)
class Row:
    case: Case
    latest: Message
    messages: int


def inbox_rows(session: Session, f: Filters, me: str) -> tuple[list[Row], int]:
    """A page of cases, most serious and soonest due first, each with its latest message.

    The page of cases is chosen first and only its messages are read, so a refresh costs
    the same however many messages the database holds.
    """
    where = _conditions(f, me)
    total = session.exec(select(func.count()).select_from(Case).where(*where)).one()
    cases = session.exec(
        select(Case)
        .where(*where)
        .order_by(col(Case.priority), col(Case.sla_due_at), col(Case.id).desc())
        .offset((f.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    ids = [c.id for c in cases if c.id is not None]
    stats = {
        case_id: (latest_id, count)
        for case_id, latest_id, count in session.exec(
            select(Message.case_id, func.max(Message.id), func.count(col(Message.id)))
            .where(col(Message.case_id).in_(ids))
            .group_by(col(Message.case_id))
        )
    }
    latest = {
        m.id: m
        for m in session.exec(
            select(Message).where(col(Message.id).in_([i for i, _ in stats.values()]))
        )
    }
    rows = []
    for case in cases:
        latest_id, count = stats.get(case.id, (None, 0))
        message = latest.get(latest_id)
        if message is not None:  # every case has a message; a bare one is nothing to show
            rows.append(Row(case, message, count))
    return rows, total


def _choices(session: Session) -> dict[str, list[str]]:
    channels = session.exec(select(Case.channel).distinct().order_by(col(Case.channel))).all()
    assignees = session.exec(
        select(Case.assignee)
        .where(col(Case.assignee).is_not(None))
        .distinct()
        .order_by(col(Case.assignee))
    ).all()
    return {
        "channels": list(channels),
        "scenarios": list(SCENARIOS),
        "statuses": list(STATUSES),
        "assignees": [a for a in assignees if a],
    }


def _context(request: Request, who: SignedIn, f: Filters) -> dict[str, Any]:
    bot = app_of(request)
    with bot.db.session() as session:
        rows, total = inbox_rows(session, f, who.user.username)
        choices = _choices(session)
        alerts = alerts_for(session, who.user, now=bot.clock.now(), limit=10)
    pages = max(1, -(-total // PAGE_SIZE))
    return {
        "rows": rows,
        "alerts": alerts,
        "total": total,
        "f": f,
        "pages": pages,
        "choices": choices,
        "rows_url": "/inbox/rows" + (f"?{f.query(page=f.page)}" if f.query(page=f.page) else ""),
    }


@router.get("/", response_class=HTMLResponse)
def inbox(request: Request, who: Staff, f: InboxFilters) -> HTMLResponse:
    return _page(request, who, f, "inbox.html")


@router.get("/inbox/rows", response_class=HTMLResponse)
def inbox_rows_partial(request: Request, who: StaffPolling, f: InboxFilters) -> HTMLResponse:
    """The rows alone, for the automatic refresh (which does not count as activity)."""
    return _page(request, who, f, "_inbox_rows.html")


def _page(request: Request, who: SignedIn, f: Filters, template: str) -> HTMLResponse:
    try:
        f.check()
    except BadFilter as exc:
        return render(request, "error.html", {"message": str(exc)}, who=who, status_code=422)
    return render(request, template, _context(request, who, f), who=who)
