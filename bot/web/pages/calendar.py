"""The campaigns calendar: the coming weeks of planned posts, by local day and channel.

Days are the force's calendar days (Europe/London), so a post at 00:30 BST sits on the
day people read it. Posts appear once planned (`campusbot campaigns plan`); each shows its
state, so a gap in approvals is visible days ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlmodel import col, select

from bot import posts as workflow
from bot.models import Post
from bot.web.access import Anyone, app_of
from bot.web.render import render
from channels.limits import LIMITS

router = APIRouter()


@dataclass(frozen=True)
class Day:
    day: date
    cells: dict[str, list[Post]]

    @property
    def empty(self) -> bool:
        return not any(self.cells.values())


@router.get("/calendar", response_class=HTMLResponse)
def calendar(
    request: Request,
    who: Anyone,
    start: Annotated[date | None, Query(alias="from")] = None,
    weeks: Annotated[int, Query(ge=1, le=12)] = 4,
) -> HTMLResponse:
    bot = app_of(request)
    tz = bot.settings.tz
    today = bot.clock.now().astimezone(tz).date()
    first = start or today
    days = [first + timedelta(days=i) for i in range(weeks * 7)]
    begin = datetime.combine(first, time(), tz)
    end = datetime.combine(days[-1] + timedelta(days=1), time(), tz)
    with bot.db.session() as session:
        planned = list(
            session.exec(
                select(Post)
                .where(col(Post.scheduled_for) >= begin, col(Post.scheduled_for) < end)
                .order_by(col(Post.scheduled_for), col(Post.channel))
            )
        )
        paused = workflow.paused(session)
    channels = list(LIMITS) + sorted({p.channel for p in planned} - set(LIMITS))
    grid = {d: Day(d, {c: [] for c in channels}) for d in days}
    for post in planned:
        if post.scheduled_for is None:
            continue
        local = post.scheduled_for.astimezone(tz).date()
        if local in grid:
            grid[local].cells[post.channel].append(post)
    return render(
        request,
        "calendar.html",
        {
            "days": list(grid.values()),
            "channels": channels,
            "first": first,
            "weeks": weeks,
            "today": today,
            "earlier": first - timedelta(days=weeks * 7),
            "later": first + timedelta(days=weeks * 7),
            "count": len(planned),
            "paused": paused,
        },
        who=who,
    )
