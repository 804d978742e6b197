"""Building blocks for the survey tests: a survey open on the tests' day, a campaign linking
to it, an external survey, and In The Know replies as the channel delivers them."""

from __future__ import annotations

import json
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from sqlmodel import select

from bot.app import App, build
from bot.clock import FixedClock
from bot.config import Settings
from bot.db import Database
from bot.models import SurveyLink
from bot.survey_store import run_collection
from channels.in_the_know import parse_email, parse_push
from schedules.campaigns import load_campaigns
from schedules.planner import survey_link

SURVEY_ID = "safety-2026"
CAMPAIGN = "bikes-2026"
SURVEY = """\
id: safety-2026
title: Campus safety survey
intro: |-
  Four quick questions.

  No names, please.
opens: 2026-11-01
closes: 2026-12-31
questions:
  - key: worry
    text: What worries you most?
    kind: single
    choices: [Getting home at night, Theft, Drink spiking, Something else]
  - key: channels
    text: How would you like to hear from us?
    kind: multiple
    choices: [Twitter, Facebook, In The Know email alerts, Face to face]
  - key: safe
    text: How safe do you feel on campus after dark?
    kind: rating
    low: Very unsafe
    high: Very safe
  - key: concerns
    text: Anything else worrying you?
    kind: text
    max_chars: 300
in_the_know:
  alert_ids: ["487390"]
  subject: Campus safety survey
"""
EXTERNAL = """\
id: uni-wide-2026
title: University-wide student survey
external_url: https://forms.example.org/uni-wide
"""
CAMPAIGN_YAML = """\
name: bikes-2026
title: Bike security
topic: security_of_property
channels: [twitter, facebook, in_the_know]
start: 2026-11-02
duration_days: 42
cadence:
  days: [mon, wed, fri]
  time: "12:30"
survey:
  id: safety-2026
  label: Tell us what worries you
posts:
  - short: Two locks, one of them a D-lock, through the frame and a fixed stand.
    long: Most bikes stolen on campus were locked with a cable lock alone. Use two locks.
"""


def survey_folders(root: Path) -> tuple[Path, Path]:
    campaigns, surveys = root / "campaigns", root / "surveys"
    campaigns.mkdir(exist_ok=True)
    surveys.mkdir(exist_ok=True)
    (campaigns / f"{CAMPAIGN}.yaml").write_text(CAMPAIGN_YAML)
    (surveys / f"{SURVEY_ID}.yaml").write_text(SURVEY)
    (surveys / "uni-wide-2026.yaml").write_text(EXTERNAL)
    return campaigns, surveys


def survey_bot(db: Database, settings: Settings, clock: FixedClock, root: Path) -> App:
    """A bot whose campaigns and surveys are the ones above."""
    campaigns, surveys = survey_folders(root)
    changed = settings.model_copy(update={"campaigns_dir": campaigns, "surveys_dir": surveys})
    return build(changed, clock=clock, db=db)


def tracking_code(app: App, channel: str) -> str:
    """The campaign's tracking code for ``channel``, made as planning makes it."""
    campaign = next(c for c in load_campaigns(app.settings.campaigns_dir) if c.name == CAMPAIGN)
    with app.db.session() as session:
        survey_link(session, campaign, channel, base_url="http://testserver", at=app.clock.now())
        link = session.exec(
            select(SurveyLink).where(SurveyLink.campaign == CAMPAIGN, SurveyLink.channel == channel)
        ).one()
    return link.code


def reply_email(
    text: str,
    *,
    subject: str = "Re: Campus safety survey",
    message_id: str = "<r1@mail.example>",
    thread: str = "<alert-1@alerts.example>",
    at: datetime,
) -> bytes:
    message = EmailMessage()
    message["From"] = "Sam Student <sam.student@example.ac.uk>"
    message["To"] = "campus-police@example.org"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["In-Reply-To"] = thread
    message["References"] = thread
    message["Date"] = format_datetime(at)
    message.set_content(text)
    return bytes(message)


def deliver_email(app: App, raw: bytes) -> None:
    app.pipeline.run(parse_email(raw, now=app.clock.now()), source="in_the_know")


def deliver_push(app: App, reply_id: str, text: str, alert_id: str, sent_at: str) -> None:
    body = {
        "version": 1,
        "type": "reply",
        "id": reply_id,
        "sent_at": sent_at,
        "alert_id": alert_id,
        "member": {"id": f"M-{reply_id}", "name": "Jordan Bell"},
        "text": text,
    }
    app.pipeline.run(
        parse_push(json.dumps(body).encode(), now=app.clock.now()), source="in_the_know"
    )


def collect(app: App) -> int:
    """What `campusbot surveys collect` does: replies in, then free text tagged."""
    return run_collection(app)[0].recorded
