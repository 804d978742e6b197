"""Reports: the 2017 pilot's own figures come back exactly, on both databases."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import App
from bot.cli import main
from bot.messages import InboundMessage
from bot.metrics_import import import_metrics, read_metrics_file
from bot.models import Case
from bot.paths import ROOT
from bot.report_render import render_html, write_csv, write_json
from bot.reports import ReportQuery, build_report
from channels.base import Batch
from schedules.campaigns import load_campaigns
from tests.conftest import FIXTURES, message_line

LONDON = ZoneInfo("Europe/London")
PILOT = FIXTURES / "pilot_2017_metrics.json"


def _report(app: App, start: date, end: date, **kw: str) -> dict[str, list[dict[str, object]]]:
    with app.db.session() as session:
        built = build_report(
            session,
            ReportQuery(start=start, end=end, tz=LONDON, **kw),
            load_campaigns(ROOT / "schedules" / "campaigns"),
        )
    return {name: table.as_dicts() for name, table in built.tables.items()}


def test_pilot_figures_are_reproduced_exactly(bot_app: App) -> None:
    with bot_app.db.session() as session:
        import_metrics(session, read_metrics_file(PILOT), at=bot_app.clock.now())
        import_metrics(session, read_metrics_file(PILOT), at=bot_app.clock.now())  # idempotent
    tables = _report(bot_app, date(2017, 9, 18), date(2017, 10, 22))
    periods = {(r["channel"], r["metric"]): r for r in tables["period_figures"]}
    assert periods[("facebook", "likes_gained")]["value"] == 182
    welcome_reach = periods[("facebook", "reach_unique")]
    assert welcome_reach["value"] == 36470
    assert (welcome_reach["start"], welcome_reach["end"]) == ("2017-09-18", "2017-09-24")
    assert periods[("in_the_know", "members_new")]["value"] == 24
    [twitter] = tables["summary"]
    assert twitter == {
        "channel": "twitter",
        "days": 28,
        "total_reach": 81200,
        "mean_daily_reach": 2900.0,
    }
    pilot = next(c for c in tables["campaigns"] if c["topic"] == "pilot_awareness")
    assert pilot["start"] == "2017-10-09"


def test_daily_figures_outside_the_range_are_left_out(bot_app: App) -> None:
    with bot_app.db.session() as session:
        import_metrics(session, read_metrics_file(PILOT), at=bot_app.clock.now())
    tables = _report(bot_app, date(2017, 9, 25), date(2017, 9, 26), channel="twitter")
    assert [r["day"] for r in tables["reach_per_day"]] == ["2017-09-25", "2017-09-26"]
    assert tables["period_figures"] == []  # Facebook is filtered out by --channel


def test_messages_count_on_their_london_day(bot_app: App) -> None:
    late = [  # 23:30 UTC on 31 March 2026 is 00:30 BST on 1 April
        message_line(
            "a", "my bike was stolen from the library", received_at="2026-03-31T23:30:00+00:00"
        ),
        message_line("b", "loud party again", received_at="2026-03-31T22:30:00+00:00"),
    ]
    bot_app.pipeline.run(
        Batch(messages=[InboundMessage.model_validate(m) for m in late]), source="replay"
    )
    rows = _report(bot_app, date(2026, 3, 31), date(2026, 4, 1))["inbound_by_scenario"]
    assert {(r["day"], r["scenario"]) for r in rows} == {
        ("2026-03-31", "anti_social_behaviour"),
        ("2026-04-01", "theft"),
    }


def test_response_times_median_and_p90_against_the_sla(bot_app: App, tmp_path: Path) -> None:
    opened = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    with bot_app.db.session() as session:
        for minutes in (5, 10, 20, 30, 40, 50, 60, 70, 80, 120):
            session.add(
                Case(
                    channel="twitter",
                    conversation_id=f"c{minutes}",
                    author_id="a",
                    priority="P1",
                    risk=True,
                    urgent=True,
                    opened_at=opened,
                    updated_at=opened,
                    sla_due_at=opened + timedelta(minutes=15),
                    first_human_reply_at=opened + timedelta(minutes=minutes),
                    acknowledged_at=opened + timedelta(seconds=30),
                )
            )
        session.add(
            Case(
                channel="twitter",
                conversation_id="none",
                author_id="b",
                priority="P2",
                urgent=True,
                opened_at=opened,
                updated_at=opened,
                sla_due_at=opened + timedelta(hours=1),
            )
        )
    rows = {
        r["group"]: r
        for r in _report(bot_app, date(2026, 11, 20), date(2026, 11, 20))["response_times"]
    }
    risk = rows["risk"]
    assert (risk["cases"], risk["human_replied"], risk["within_sla"]) == (10, 10, 2)
    assert (risk["median_minutes"], risk["p90_minutes"]) == (40.0, 80.0)
    assert risk["auto_ack_median_minutes"] == 0.5
    assert rows["urgent"]["human_replied"] == 0 and rows["urgent"]["median_minutes"] is None
    with bot_app.db.session() as session:  # plain floats on both databases: JSON can hold them
        built = build_report(
            session, ReportQuery(start=date(2026, 11, 20), end=date(2026, 11, 20), tz=LONDON), []
        )
    write_json(built, tmp_path / "times.json")
    assert json.loads((tmp_path / "times.json").read_text())["tables"]["response_times"]["rows"]


def test_repeated_keys_in_one_file_keep_the_last_value(bot_app: App, tmp_path: Path) -> None:
    path = tmp_path / "dupes.json"
    row = {"channel": "twitter", "account": "a", "day": "2017-09-25", "metric": "reach"}
    path.write_text(json.dumps({"daily": [{**row, "value": 1}, {**row, "value": 7}]}))
    with bot_app.db.session() as session:
        import_metrics(session, read_metrics_file(path), at=bot_app.clock.now())
    [summary] = _report(bot_app, date(2017, 9, 25), date(2017, 9, 25))["summary"]
    assert summary["total_reach"] == 7


def test_files_html_csv_json(bot_app: App, tmp_path: Path) -> None:
    with bot_app.db.session() as session:
        import_metrics(session, read_metrics_file(PILOT), at=bot_app.clock.now())
        built = build_report(
            session,
            ReportQuery(start=date(2017, 9, 18), end=date(2017, 10, 22), tz=LONDON),
            load_campaigns(ROOT / "schedules" / "campaigns"),
        )
    html = render_html(built)
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "36,470" in html and "2,900" in html and "<svg" in html
    write_json(built, tmp_path / "r.json")
    assert (
        json.loads((tmp_path / "r.json").read_text())["tables"]["summary"]["rows"][0][
            "mean_daily_reach"
        ]
        == 2900.0
    )
    files = write_csv(built, tmp_path / "csv")
    assert {f.name for f in files} >= {"summary.csv", "reach_per_day.csv", "period_figures.csv"}
    with (tmp_path / "csv" / "period_figures.csv").open() as handle:
        assert [r["value"] for r in csv.DictReader(handle)] == ["182", "36470", "24"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "2017-13-01", "--to", "2017-12-01"], "not an ISO date"),
        (["--from", "2017-10-02", "--to", "2017-10-01"], "--to is before --from"),
        (["--from", "2017-10-01", "--to", "2017-10-02", "--channel", "myspace"], "choose twitter"),
        (["--from", "2017-10-01", "--to", "2017-10-02", "--format", "pdf"], "pdf"),
    ],
)
def test_report_refuses_bad_arguments(
    settings: object,
    tmp_path: Path,
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["report", *argv, "--output", str(tmp_path / "r.html")]) == 2
    assert message in capsys.readouterr().err


def test_metrics_import_refuses_a_bad_file_whole(
    settings: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "daily": [
                    {
                        "channel": "twitter",
                        "account": "a",
                        "day": "2017-09-25",
                        "metric": "reach",
                        "value": 1,
                    },
                    {
                        "channel": "myspace",
                        "account": "a",
                        "day": "2017-09-26",
                        "metric": "reach",
                        "value": -5,
                    },
                ]
            }
        )
    )
    assert main(["--config", str(config), "metrics", "import", "--file", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "daily.1.channel" in err and "daily.1.value" in err
    (tmp_path / "broken.json").write_text('{"daily": [')
    assert (
        main(
            ["--config", str(config), "metrics", "import", "--file", str(tmp_path / "broken.json")]
        )
        == 1
    )
    assert "not valid JSON" in capsys.readouterr().err
