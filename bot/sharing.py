"""Information sharing: an officer writes an alert once and it goes out on every channel.

The alert is rendered through each enabled channel's post template (templates/posts/),
checked against that channel's length limit, and stored as one ``alert`` post per channel,
submitted for approval like any other post (bot/posts.py): nothing is published until the
channel's approval tiers are done. The posts are created together or not at all, so an
alert that is too long for X is not half-shared.

An approved alert is published at the publisher's next round, and a pause of campaign
publishing (`campusbot posts pause-all`) never holds it back: alerts are what a critical
incident needs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, select

from bot import posts
from bot.config import Settings
from bot.crud import audit
from bot.errors import BotError
from bot.models import Post, PostKind, PostStatus, Role, User
from bot.templating import render_text
from channels.limits import LIMITS, fits, length_for
from channels.registry import capabilities_for

ALERT_ROLES = frozenset({Role.OFFICER.value, Role.COMMS_OFFICER.value, Role.ADMIN.value})
MAX_TITLE = 120
MAX_HASHTAGS = 5


class SharingError(BotError):
    """An alert that cannot be shared as written; the message says what to change."""


def alert_channels(settings: Settings) -> list[str]:
    """The channels an alert goes to: every enabled one that can publish."""
    return [
        name
        for name, channel in settings.channels().items()
        if channel.enabled and capabilities_for(name).publish
    ]


def render_alert(
    channel: str,
    *,
    title: str,
    text: str,
    short: str | None = None,
    link: str | None = None,
    hashtags: Sequence[str] = (),
) -> str:
    """The alert as ``channel`` shows it, through the same templates as campaign posts."""
    return render_text(
        f"posts/{channel}.txt.j2",
        title=title,
        short=short or text,
        long=text,
        link=link,
        hashtags=list(hashtags),
        survey_link=None,
        survey_label=None,
    )


def create_alert(
    session: Session,
    settings: Settings,
    *,
    text: str,
    by: str,
    at: datetime,
    title: str | None = None,
    short: str | None = None,
    link: str | None = None,
    hashtags: Sequence[str] = (),
) -> list[Post]:
    """One post per enabled channel, each within its limit, all submitted for approval."""
    _require_author(session, by)
    text, title = text.strip(), (title or f"{settings.account.team_name} alert").strip()
    short = (short or "").strip() or None
    if not text:
        raise SharingError("an alert needs some text")
    if not title or len(title) > MAX_TITLE:
        raise SharingError(f"a title is 1 to {MAX_TITLE} characters")
    if link is not None and not link.startswith(("https://", "http://")):
        raise SharingError(f"a link starts with https:// ({link!r} does not)")
    tags = [t if t.startswith("#") else f"#{t}" for t in (h.strip() for h in hashtags) if t]
    if len(tags) > MAX_HASHTAGS or any(not t[1:].replace("_", "").isalnum() for t in tags):
        raise SharingError(f"at most {MAX_HASHTAGS} hashtags, each letters, digits and _")
    channels = alert_channels(settings)
    if not channels:
        raise SharingError("no channel is enabled, so an alert has nowhere to go")
    rendered = {
        channel: render_alert(
            channel, title=title, text=text, short=short, link=link, hashtags=tags
        )
        for channel in channels
    }
    too_long = [
        f"{channel} {length_for(channel, body)} > {LIMITS[channel]}"
        for channel, body in rendered.items()
        if not fits(channel, body)
    ]
    if too_long:
        hint = (
            " (give X a shorter --short)"
            if "twitter" in rendered and not fits("twitter", rendered["twitter"])
            else ""
        )
        raise SharingError(f"too long for {', '.join(too_long)}{hint}; nothing was created")
    created: list[Post] = []
    for channel, body in rendered.items():
        post = Post(
            kind=PostKind.ALERT,
            channel=channel,
            text=body,
            status=PostStatus.DRAFT,
            scheduled_for=None,  # set when approved: an alert goes out as soon as it may
            created_by=by,
            created_at=at,
            updated_at=at,
        )
        session.add(post)
        session.flush()
        created.append(post)
    audit.record(
        session,
        at=at,
        actor=by,
        action="post.alert_written",
        entity="post",
        entity_id=created[0].id or 0,
        detail={"posts": [p.id for p in created], "channels": channels},
    )
    for post in created:
        posts.submit(session, post.id or 0, by=by, at=at)
    return created


def _require_author(session: Session, username: str) -> None:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or user.disabled:
        raise SharingError(f"{username} is not an active user (see `campusbot users add`)")
    if not ALERT_ROLES & set(user.roles):
        raise SharingError(
            f"writing an alert needs the officer, comms_officer or admin role; {username} has "
            f"{', '.join(user.roles) or 'no role'}"
        )
