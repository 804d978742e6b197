"""Campaign files: validation with clear errors, and slots that respect British clocks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.errors import ConfigError
from bot.paths import ROOT
from schedules.campaigns import Topic, load_campaign, load_campaigns

LONDON = ZoneInfo("Europe/London")
CAMPAIGN = """\
name: {name}
title: Bike security
topic: security_of_property
channels: [twitter, facebook]
start: {start}
duration_days: {days}
cadence:
  days: [mon, wed, fri]
  time: "12:30"
hashtags: ["#UCLanCampusCops"]
survey:
  url: https://forms.example.org/bikes
  label: Tell us about bike theft
posts:
  - short: Two locks, one of them a D-lock, through the frame and a fixed stand.
    long: Most bikes stolen on campus were locked with a cable lock alone. Use two locks.
  - short: Register your bike free at BikeRegister so it can be returned if found.
    long: Police check recovered bikes against BikeRegister. It takes five minutes.
    link: https://www.bikeregister.com/
"""


def write(
    folder: Path,
    name: str = "bikes",
    start: str = "2026-03-23",
    days: int = 14,
    body: str | None = None,
) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        body if body is not None else CAMPAIGN.format(name=name, start=start, days=days)
    )
    return path


def test_a_valid_campaign_loads(tmp_path: Path) -> None:
    campaign = load_campaign(write(tmp_path))
    assert campaign.topic is Topic.SECURITY_OF_PROPERTY
    assert campaign.end == date(2026, 4, 5)
    assert len(campaign.posts) == 2


def test_slots_keep_local_time_across_the_clock_change(tmp_path: Path) -> None:
    # British Summer Time starts on Sunday 29 March 2026.
    campaign = load_campaign(write(tmp_path))
    slots = campaign.slots(LONDON)
    assert [s.astimezone(LONDON).strftime("%a %d %H:%M") for s in slots] == [
        "Mon 23 12:30",
        "Wed 25 12:30",
        "Fri 27 12:30",
        "Mon 30 12:30",
        "Wed 01 12:30",
        "Fri 03 12:30",
    ]
    assert slots[2] == datetime(2026, 3, 27, 12, 30, tzinfo=UTC)  # GMT
    assert slots[3] == datetime(2026, 3, 30, 11, 30, tzinfo=UTC)  # BST


def test_autumn_change_and_a_window(tmp_path: Path) -> None:
    # Clocks go back on Sunday 25 October 2026.
    campaign = load_campaign(write(tmp_path, start="2026-10-19", days=14))
    window = campaign.slots(LONDON, start=date(2026, 10, 23), days=4)
    assert [s.isoformat() for s in window] == [
        "2026-10-23T11:30:00+00:00",
        "2026-10-26T12:30:00+00:00",
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("name: bikes\n", "title: Field required"),
        (CAMPAIGN.format(name="bikes", start="2026-02-30", days=7), "out of range"),
        (
            CAMPAIGN.format(name="bikes", start="2026-03-23", days=7).replace("12:30", "25:00"),
            "cadence.time",
        ),
        (
            CAMPAIGN.format(name="bikes", start="2026-03-23", days=7).replace(
                "mon, wed", "mon, xyz"
            ),
            "cadence.days",
        ),
        (
            CAMPAIGN.format(name="bikes", start="2026-03-23", days=7).replace(
                "security_of_property", "knitting"
            ),
            "topic",
        ),
        (
            CAMPAIGN.format(name="bikes", start="2026-03-23", days=7).replace(
                "[twitter, facebook]", "[myspace]"
            ),
            "channels",
        ),
        (
            CAMPAIGN.format(name="bikes", start="2026-03-23", days=7).replace(
                '"#UCLanCampusCops"', '"no hash"'
            ),
            "hashtag",
        ),
        ("- just\n- a list\n", "expected a mapping"),
        ("title: [unclosed\n", "not valid YAML"),
        (CAMPAIGN.format(name="other", start="2026-03-23", days=7), "must match the file name"),
    ],
)
def test_bad_campaigns_are_refused_with_file_and_field(
    tmp_path: Path, body: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_campaign(write(tmp_path, body=body))
    assert "bikes.yaml" in str(caught.value)
    assert expected in str(caught.value)


def test_all_problems_in_a_folder_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, name="good")
    write(tmp_path, name="bad1", body="name: bad1\n")
    write(tmp_path, name="bad2", body=": : :\n")
    with pytest.raises(ConfigError) as caught:
        load_campaigns(tmp_path)
    assert "bad1.yaml" in str(caught.value) and "bad2.yaml" in str(caught.value)


def test_the_shipped_campaigns_are_valid_and_cover_the_pilot() -> None:
    campaigns = {c.name: c for c in load_campaigns(ROOT / "schedules" / "campaigns")}
    topics = {c.topic for c in campaigns.values()}
    assert topics == set(Topic)
    pilot = next(c for c in campaigns.values() if c.topic is Topic.PILOT_AWARENESS)
    assert pilot.start == date(2017, 10, 9) and pilot.duration_days == 42
    welcome = next(c for c in campaigns.values() if c.topic is Topic.WELCOME_WEEK)
    assert welcome.start == date(2017, 9, 18)


def test_a_window_before_a_campaign_starts_has_no_slots(tmp_path: Path) -> None:
    campaign = load_campaign(write(tmp_path, start="2026-03-23"))
    assert campaign.slots(LONDON, start=date(2017, 10, 9), days=42) == []
    assert len(campaign.slots(LONDON, start=date(2026, 3, 20), days=7)) == 2  # Mon 23, Wed 25
