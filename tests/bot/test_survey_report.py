"""The survey section of the analysts' report: responses per channel, answers per choice
(including choices nobody picked), ratings and free-text themes by scenario, with free text
redacted; counted in SQL on both databases; HTML with a chart per question, CSV and JSON."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.app import App
from bot.cli import main
from bot.clock import FixedClock
from bot.config import Settings, load_settings
from bot.db import Database
from bot.report_render import render_html, write_csv, write_json
from bot.reports import Report, ReportQuery, build_report
from bot.survey_store import WEB, Arrival, record_response, tag_free_text
from bot.surveys import Given, Survey, check_answers
from schedules.campaigns import load_campaigns
from tests.bot.survey_support import CAMPAIGN, SURVEY, SURVEY_ID, survey_bot, survey_folders
from tests.conftest import NOW

LONDON = ZoneInfo("Europe/London")
SCRIPT = "<script>alert(1)</script> my bike was nicked, call me on 07700 900123"


def _answer(
    app: App,
    who: str,
    at: datetime,
    worry: str,
    channels: tuple[str, ...],
    safe: str,
    concerns: str | None = None,
    channel: str | None = None,
) -> None:
    survey = Survey.model_validate(yaml.safe_load(SURVEY))
    answers = check_answers(
        survey,
        [
            Given("worry", choices=(worry,)),
            Given("channels", choices=channels),
            Given("safe", choices=(safe,)),
            Given("concerns", text=concerns),
        ],
    )
    arrival = Arrival(WEB, channel=channel, campaign=CAMPAIGN if channel else None)
    with app.db.session() as session:
        record_response(
            session,
            survey,
            answers,
            arrival=arrival,
            tz=LONDON,
            at=at,
            respondent=who * 64,
        )


def seed(app: App) -> None:
    _answer(app, "a", NOW, "theft", ("twitter", "facebook"), "4", SCRIPT, channel="twitter")
    _answer(app, "b", NOW, "theft", ("twitter",), "2", channel="facebook")
    _answer(app, "c", NOW, "drink-spiking", ("face-to-face",), "5", "someone selling weed")
    _answer(app, "d", NOW - timedelta(days=40), "theft", ("twitter",), "1", channel="twitter")
    with app.db.session() as session:
        tag_free_text(session, app.classifier, at=NOW)


@pytest.fixture
def app(db: Database, settings: Settings, clock: FixedClock, tmp_path: Path) -> App:
    built = survey_bot(db, settings, clock, tmp_path)
    seed(built)
    return built


def _build(app: App, **kw: str) -> Report:
    with app.db.session() as session:
        return build_report(
            session,
            ReportQuery(start=date(2026, 11, 1), end=date(2026, 11, 30), tz=LONDON, **kw),
            load_campaigns(app.settings.campaigns_dir),
        )


def _rows(report: Report, name: str) -> list[tuple[object, ...]]:
    return [tuple(row) for row in report.tables[name].rows]


def test_counts_per_choice_include_the_unpicked_and_shares_of_those_who_answered(
    app: App,
) -> None:
    report = _build(app)
    assert _rows(report, "survey_responses") == [
        (SURVEY_ID, "Campus safety survey", "web", "direct", 1),
        (SURVEY_ID, "Campus safety survey", "web", "facebook", 1),
        (SURVEY_ID, "Campus safety survey", "web", "twitter", 1),  # the October one is out
    ]
    choices = {(r[1], r[3]): (r[4], r[5]) for r in _rows(report, "survey_choices")}
    assert [choices[(1, c)] for c in ("Getting home at night", "Theft", "Drink spiking")] == [
        (0, 0.0),
        (2, 66.7),
        (1, 33.3),
    ]
    assert choices[(2, "Twitter")] == (2, 66.7) and choices[(2, "In The Know email alerts")] == (
        0,
        0.0,
    )
    assert [choices[(3, p)][0] for p in "12345"] == [0, 1, 0, 1, 1]
    assert _rows(report, "survey_ratings") == [
        (SURVEY_ID, 3, "How safe do you feel on campus after dark?", 3, 3.67)
    ]
    assert sorted(_rows(report, "survey_themes")) == [
        (SURVEY_ID, 4, "Anything else worrying you?", "drugs", 1),
        (SURVEY_ID, 4, "Anything else worrying you?", "theft", 1),
    ]
    weed, bike = report.tables["survey_free_text"].as_dicts()  # newest first
    assert (weed["text"], weed["scenarios"], weed["channel"]) == (
        "someone selling weed",
        "drugs",
        "direct",
    )
    assert bike["text"].endswith("call me on [phone]")  # redacted before it is shown
    assert bike["scenarios"] == "theft" and bike["day"] == "2026-11-21"


def test_channel_and_campaign_filters_apply_to_the_survey_tables(app: App) -> None:
    twitter = _build(app, channel="twitter")
    assert _rows(twitter, "survey_responses") == [
        (SURVEY_ID, "Campus safety survey", "web", "twitter", 1)
    ]
    theft = next(r for r in _rows(twitter, "survey_choices") if r[3] == "Theft")
    assert theft[4:] == (1, 100.0)
    campaign = _build(app, campaign=CAMPAIGN)
    assert [r[3] for r in _rows(campaign, "survey_responses")] == ["facebook", "twitter"]
    nothing = _build(app, campaign="welcome-week")
    assert all(not nothing.tables[n].rows for n in nothing.tables if n.startswith("survey_"))


def test_html_csv_and_json_carry_the_survey_section(app: App, tmp_path: Path) -> None:
    report = _build(app)
    html = render_html(report)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "07700" not in html
    assert "1 free-text answer mentions theft; 1 free-text answer mentions drugs" in html or (
        "1 free-text answer mentions drugs; 1 free-text answer mentions theft" in html
    )
    assert html.count('aria-label="What worries you most?"') == 1
    assert (
        "Drink spiking" in html and html.count("<figure>") == 3 + 1
    )  # 3 with choices, 1 of themes
    write_json(report, tmp_path / "r.json")
    tables = json.loads((tmp_path / "r.json").read_text())["tables"]
    assert tables["survey_ratings"]["rows"][0]["mean"] == 3.67
    write_csv(report, tmp_path / "csv")
    with (tmp_path / "csv" / "survey_choices.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 + 4 + 5 and rows[1]["choice"] == "Theft" and rows[1]["answers"] == "2"


def test_surveys_results_on_the_command_line(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    campaigns, surveys = survey_folders(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database_url: sqlite:///{tmp_path / 'cli.db'}\ncampaigns_dir: {campaigns}\n"
        f"surveys_dir: {surveys}\nclassifier:\n  kind: keywords\n"
    )
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    from bot.app import build

    app = build(load_settings(config), clock=FixedClock(NOW))
    _answer(app, "a", NOW, "theft", ("twitter",), "4", "[bold]lights[/bold] out by the SU")
    assert main(["--config", str(config), "surveys", "collect"]) == 0
    assert "1 free-text answer(s) tagged" in capsys.readouterr().out
    argv = ["--config", str(config), "surveys", "results", SURVEY_ID, "--to", "2026-11-30"]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "[bold]lights[/bold]" in shown  # shown as written, not as console markup
    assert main([*argv, "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["from"] == "2026-11-01"
    assert payload["tables"]["survey_responses"][0]["responses"] == 1
    assert main(["--config", str(config), "surveys", "list"]) == 0
    listed = capsys.readouterr().out
    assert SURVEY_ID in listed and "uni-wide-2026" in listed and "external" in listed
    assert main(["--config", str(config), "surveys", "results", "nope"]) == 1
    assert "no survey 'nope'" in capsys.readouterr().err
    app.close()
