"""`campusbot campaigns plan`: turn campaign files into draft posts, one per channel per slot.

Planning is idempotent (a slot that already has its post is left alone, whatever state it
is in), renders each post through the channel's template in the sandbox, checks it against
the channel's length limit, and gives each channel of each campaign its own counted
survey link. Nothing planned here is published until it has been approved.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from bot.crud import audit
from bot.models import Post, PostKind, PostStatus, SurveyLink
from bot.templating import TEMPLATES_DIR, render_text
from channels.limits import LIMITS, length_for
from schedules.campaigns import Campaign


@dataclass
class PlanReport:
    created: int = 0
    existing: int = 0
    too_long: list[str] = field(default_factory=list)


def survey_link(
    session: Session, campaign: Campaign, channel: str, *, base_url: str, at: datetime
) -> str | None:
    if campaign.survey is None:
        return None
    link = session.exec(
        select(SurveyLink).where(
            SurveyLink.campaign == campaign.name, SurveyLink.channel == channel
        )
    ).first()
    if link is None:
        code = secrets.token_urlsafe(6)
        # One of our own surveys: its page learns the channel from the code.
        target = campaign.survey.url or f"{base_url.rstrip('/')}/survey/{code}"
        link = SurveyLink(
            code=code,
            campaign=campaign.name,
            channel=channel,
            target_url=str(target),
            created_at=at,
        )
        session.add(link)
        session.flush()
    return f"{base_url.rstrip('/')}/s/{link.code}"


def render_post(
    campaign: Campaign,
    index: int,
    channel: str,
    *,
    survey_url: str | None,
    root: Path = TEMPLATES_DIR,
) -> str:
    post = campaign.posts[index % len(campaign.posts)]
    return render_text(
        f"posts/{channel}.txt.j2",
        root=root,
        title=campaign.title,
        short=post.short,
        long=post.long,
        link=str(post.link) if post.link else None,
        hashtags=campaign.hashtags,
        survey_link=survey_url,
        survey_label=campaign.survey.label if campaign.survey else None,
    )


def plan(
    session: Session,
    campaigns: list[Campaign],
    *,
    tz: ZoneInfo,
    start: date,
    days: int,
    now: datetime,
    by: str,
    base_url: str,
) -> PlanReport:
    report = PlanReport()
    for campaign in campaigns:
        every_slot = campaign.slots(tz)
        window = set(campaign.slots(tz, start=start, days=days))
        for index, slot in enumerate(every_slot):
            if slot not in window:
                continue
            for channel in campaign.channels:
                exists = session.exec(
                    select(Post.id).where(
                        Post.campaign == campaign.name,
                        Post.channel == channel,
                        Post.scheduled_for == slot,
                    )
                ).first()
                if exists is not None:
                    report.existing += 1
                    continue
                url = survey_link(session, campaign, channel, base_url=base_url, at=now)
                text = render_post(campaign, index, channel, survey_url=url)
                if length_for(channel, text) > LIMITS[channel]:
                    report.too_long.append(
                        f"{campaign.name} post {index % len(campaign.posts) + 1} on {channel}: "
                        f"{length_for(channel, text)} > {LIMITS[channel]}"
                    )
                    continue
                post = Post(
                    kind=PostKind.CAMPAIGN,
                    channel=channel,
                    campaign=campaign.name,
                    text=text,
                    status=PostStatus.DRAFT,
                    scheduled_for=slot,
                    created_by=by,
                    created_at=now,
                    updated_at=now,
                )
                session.add(post)
                session.flush()
                audit.record(
                    session,
                    at=now,
                    actor=by,
                    action="post.planned",
                    entity="post",
                    entity_id=post.id or 0,
                    detail={"campaign": campaign.name, "channel": channel},
                )
                report.created += 1
    return report
