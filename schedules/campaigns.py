"""Campaigns: crime-prevention advice planned as YAML, validated before anything is queued.

A campaign names its channels, start date, length, cadence (weekdays and a local time in
Europe/London), hashtags, an optional survey link and a list of posts used in turn at each
slot. Files live in ``schedules/campaigns/`` (``campaigns_dir`` in config).
"""

from __future__ import annotations

import datetime as dt
import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)

from bot.yaml_files import load_folder, load_model

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Channel = Literal["twitter", "facebook", "in_the_know"]
MAX_FILE_BYTES = 256 * 1024


class Topic(StrEnum):
    PERSONAL_SAFETY = "personal_safety"
    SECURITY_OF_PROPERTY = "security_of_property"
    RESPONSIBLE_DRINKING = "responsible_drinking"
    ALCOHOL_RELATED_VIOLENCE = "alcohol_related_violence"
    SEXUAL_OFFENCES = "sexual_offences"
    STUDENT_SUPPORT = "student_support"
    WELCOME_WEEK = "welcome_week"
    PILOT_AWARENESS = "pilot_awareness"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cadence(Strict):
    days: Annotated[list[Weekday], Field(min_length=1)]
    time: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")

    @property
    def local_time(self) -> dt.time:
        hours, minutes = self.time.split(":")
        return dt.time(int(hours), int(minutes))


class Survey(Strict):
    """An external survey's ``url``, or the ``id`` of one of ours (schedules/surveys/)."""

    url: HttpUrl | None = None
    id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    label: str = Field(min_length=3, max_length=200)

    @model_validator(mode="after")
    def _url_or_id(self) -> Survey:
        if (self.url is None) == (self.id is None):
            raise ValueError("give the survey's url or its id, not both")
        return self


class CampaignPost(Strict):
    short: str = Field(min_length=10, max_length=280)
    long: str = Field(min_length=10, max_length=5000)
    link: HttpUrl | None = None


class Campaign(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    title: str = Field(min_length=3, max_length=120)
    topic: Topic
    channels: Annotated[list[Channel], Field(min_length=1)]
    start: date
    duration_days: int = Field(ge=1, le=366)
    cadence: Cadence
    hashtags: list[str] = Field(default_factory=list, max_length=5)
    survey: Survey | None = None
    posts: Annotated[list[CampaignPost], Field(min_length=1, max_length=100)]

    @field_validator("hashtags")
    @classmethod
    def _hashtags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not re.fullmatch(r"#\w{1,60}", tag):
                raise ValueError(f"{tag!r} is not a hashtag (# then letters, digits or _)")
        return tags

    @property
    def end(self) -> date:
        """The last day of the campaign (inclusive)."""
        return self.start + timedelta(days=self.duration_days - 1)

    def slots(
        self, tz: ZoneInfo, *, start: date | None = None, days: int | None = None
    ) -> list[datetime]:
        """Local cadence times from ``start`` for ``days`` days, within the campaign, in UTC.

        Each slot is the wall-clock time in Europe/London on that date, so 12:30 stays 12:30
        across the clocks changing; the UTC instant moves instead.
        """
        window_start = start or self.start
        first = max(self.start, window_start)
        last = self.end if days is None else min(self.end, window_start + timedelta(days=days - 1))
        wanted = {WEEKDAYS.index(d) for d in self.cadence.days}
        out: list[datetime] = []
        day = first
        while day <= last:
            if day.weekday() in wanted:
                local = datetime.combine(day, self.cadence.local_time, tzinfo=tz)
                out.append(local.astimezone(ZoneInfo("UTC")))
            day += timedelta(days=1)
        return out


def load_campaign(path: Path) -> Campaign:
    """Parse and validate one file; the error names the file, the field and the reason."""
    return load_model(path, Campaign, kind="campaign", key="name", max_bytes=MAX_FILE_BYTES)


def load_campaigns(folder: Path) -> list[Campaign]:
    """Every campaign in the folder; all problems are reported together."""
    return load_folder(folder, load_campaign, kind="campaign")
