"""Information sharing: an alert written once becomes one post per enabled channel, each within
its limit, none published before approval, and all published even while campaigns are paused."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import col, select

from bot import posts
from bot.app import App, build
from bot.cli import main
from bot.clock import FixedClock
from bot.config import Settings, load_settings
from bot.crud import users
from bot.db import Database
from bot.models import AuditEntry, Post, PostKind, PostStatus
from bot.sharing import SharingError, create_alert
from channels.fake import FakeChannel
from channels.limits import LIMITS, fits, length_for
from schedules.publisher import publish_due
from tests.conftest import NOW

GRACE = timedelta(hours=2)
ALERT = (
    "Fylde Road is closed between Adelphi roundabout and Corporation Street after a serious "
    "collision. Please avoid the area and use Moor Lane to reach the Foster building. We will "
    "update this alert when the road reopens. Buses 23 and 88 are diverted along Marsh Lane; "
    "allow extra time to reach lectures and exams this afternoon."
)
SHORT = "Fylde Rd closed (Adelphi to Corporation St) after a collision. Avoid the area."
LINK = "https://www.lancashire.police.uk/news"


def _write_config(tmp_path: Path, **channels: bool) -> Path:
    enabled = {"twitter": True, "facebook": True, "in_the_know": True, **channels}
    config: dict[str, Any] = {
        "timezone": "Europe/London",
        "classifier": {"kind": "keywords"},
        **{name: {"enabled": on} for name, on in enabled.items()},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **channels: bool) -> Settings:
    import os

    for name in list(os.environ):
        if name.startswith("CAMPUSBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return load_settings(_write_config(tmp_path, **channels))


@pytest.fixture
def app(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    built = build(_settings(tmp_path, monkeypatch), clock=FixedClock(NOW), db=db)
    with built.db.session() as session:
        for name, roles in [
            ("pc.ashworth", ["officer"]),
            ("cara", ["comms_officer"]),
            ("ana", ["analyst"]),
        ]:
            users.add(session, username=name, roles=roles, at=NOW, by="admin")
    return built


def _clock(app: App) -> FixedClock:
    assert isinstance(app.clock, FixedClock)
    return app.clock


def _alert(app: App, **options: Any) -> list[int]:
    with app.db.session() as session:
        created = create_alert(
            session,
            app.settings,
            text=options.pop("text", ALERT),
            by=options.pop("by", "pc.ashworth"),
            at=app.clock.now(),
            **options,
        )
        return [p.id or 0 for p in created]


def _posts(app: App) -> list[Post]:
    with app.db.session() as session:
        return list(session.exec(select(Post).order_by(col(Post.id))))


def _approve(app: App, post_ids: list[int]) -> None:
    with app.db.session() as session:
        for post_id in post_ids:
            posts.approve(
                session, post_id, by="cara", at=app.clock.now(), policy=app.settings.approval
            )


def _channels() -> dict[str, FakeChannel]:
    return {"twitter": FakeChannel(), "facebook": FakeChannel(), "in_the_know": FakeChannel()}


def test_one_alert_becomes_a_post_per_channel_each_within_its_limit_awaiting_approval(
    app: App,
) -> None:
    _alert(app, title="Road closure: Fylde Road", short=SHORT, link=LINK, hashtags=["UCLan"])
    made = _posts(app)
    assert sorted(p.channel for p in made) == ["facebook", "in_the_know", "twitter"]
    for post in made:
        assert post.kind == PostKind.ALERT and post.status == PostStatus.PENDING_APPROVAL
        assert fits(post.channel, post.text)
        assert length_for(post.channel, post.text) <= LIMITS[post.channel]
        assert LINK in post.text and post.created_by == "pc.ashworth"
    by_channel = {p.channel: p.text for p in made}
    assert by_channel["twitter"] == f"{SHORT} {LINK} #UCLan"
    assert by_channel["facebook"].startswith(ALERT)
    assert by_channel["in_the_know"].startswith("Road closure: Fylde Road\n\n" + ALERT)
    assert "always call 999" in by_channel["in_the_know"]
    with app.db.session() as session:
        actions = [e.action for e in session.exec(select(AuditEntry))]
    assert actions.count("post.alert_written") == 1
    assert actions.count("post.transition") == 3  # each draft submitted for approval


def test_only_enabled_channels_get_the_alert(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, monkeypatch, facebook=False)
    app = build(settings, clock=FixedClock(NOW), db=db)
    with app.db.session() as session:
        users.add(session, username="pc.ashworth", roles=["officer"], at=NOW, by="admin")
    _alert(app, short=SHORT)
    assert sorted(p.channel for p in _posts(app)) == ["in_the_know", "twitter"]


def test_an_alert_too_long_for_x_is_refused_whole_until_it_has_a_short_form(app: App) -> None:
    with pytest.raises(SharingError, match=r"too long for twitter \d+ > 280 \(give X a shorter"):
        _alert(app)  # ALERT is over 280 and no --short
    assert _posts(app) == []  # not half-shared
    assert len(_alert(app, short=SHORT)) == 3


def test_nothing_is_published_before_approval_and_alerts_go_out_while_campaigns_are_paused(
    app: App,
) -> None:
    ids = _alert(app, short=SHORT)
    channels = _channels()
    with app.db.session() as session:  # a campaign post, approved and due
        session.add(
            Post(
                kind=PostKind.CAMPAIGN,
                channel="twitter",
                campaign="bikes",
                text="Lock your bike with a D-lock",
                status=PostStatus.APPROVED,
                scheduled_for=NOW,
                created_by="cara",
                created_at=NOW,
                updated_at=NOW,
            )
        )
        posts.pause_all(session, by="cara", at=NOW, reason="serious collision on Fylde Road")
    _clock(app).advance(timedelta(minutes=5))
    assert publish_due(app.db, channels, app.clock, grace=GRACE).published == 0
    assert all(not c.posts for c in channels.values())  # pending approval: nothing out

    _approve(app, ids)
    _clock(app).advance(timedelta(seconds=30))
    report = publish_due(app.db, channels, app.clock, grace=GRACE)
    assert report.paused and report.published == 3
    assert [p.text for p in channels["twitter"].posts] == [f"{SHORT}"]
    assert channels["facebook"].posts[0].text.startswith(ALERT)
    statuses: dict[str, set[str]] = {}
    for post in _posts(app):
        statuses.setdefault(post.kind, set()).add(post.status)
    assert statuses == {"alert": {"published"}, "campaign": {"approved"}}  # campaign held


def test_an_alert_waiting_for_approval_never_expires_and_goes_out_once_approved(
    app: App,
) -> None:
    ids = _alert(app, short=SHORT)
    _clock(app).advance(timedelta(days=1))
    with app.db.session() as session:
        assert posts.expire_overdue(session, at=app.clock.now(), grace=GRACE) == 0
    _approve(app, ids)
    approved = _posts(app)
    assert {p.scheduled_for for p in approved} == {app.clock.now()}  # due when approved
    channels = _channels()
    assert publish_due(app.db, channels, app.clock, grace=GRACE).published == 3
    assert publish_due(app.db, channels, app.clock, grace=GRACE).published == 0  # once


def test_an_edit_after_approval_holds_the_alert_until_approved_again(app: App) -> None:
    ids = _alert(app, short=SHORT)
    _approve(app, ids)
    twitter = next(p for p in _posts(app) if p.channel == "twitter")
    with app.db.session() as session:
        posts.edit(
            session, twitter.id or 0, by="pc.ashworth", at=app.clock.now(), text="Fylde Rd open"
        )
    _clock(app).advance(timedelta(hours=1))
    with app.db.session() as session:
        assert posts.expire_overdue(session, at=app.clock.now(), grace=GRACE) == 0
    channels = _channels()
    assert publish_due(app.db, channels, app.clock, grace=GRACE).published == 2
    assert channels["twitter"].posts == []
    with app.db.session() as session:
        posts.submit(session, twitter.id or 0, by="pc.ashworth", at=app.clock.now())
    _approve(app, [twitter.id or 0])
    assert publish_due(app.db, channels, app.clock, grace=GRACE).published == 1
    assert [p.text for p in channels["twitter"].posts] == ["Fylde Rd open"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"by": "ana"}, "needs the officer, comms_officer or admin role; ana has analyst"),
        ({"by": "nobody"}, "nobody is not an active user"),
        ({"text": "   "}, "an alert needs some text"),
        ({"short": SHORT, "link": "lancashire.police.uk"}, "a link starts with https://"),
        ({"short": SHORT, "hashtags": ["not a tag"]}, "at most 5 hashtags"),
    ],
)
def test_bad_alerts_are_refused_with_the_reason(
    app: App, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(SharingError, match=message):
        _alert(app, **options)
    assert _posts(app) == []


def test_no_enabled_channel_is_a_clear_error(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, monkeypatch, twitter=False, facebook=False, in_the_know=False)
    app = build(settings, clock=FixedClock(NOW), db=db)
    with app.db.session() as session:
        users.add(session, username="pc.ashworth", roles=["officer"], at=NOW, by="admin")
    with pytest.raises(SharingError, match="no channel is enabled"):
        _alert(app)


def test_cli_alert_is_created_once_and_approved_like_any_post(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path, monkeypatch)
    config = tmp_path / "config.yaml"
    assert settings.database_url.startswith("sqlite")
    base = ["--config", str(config)]
    assert main([*base, "db", "upgrade"]) == 0
    for name, role in [("pc.ashworth", "officer"), ("cara", "comms_officer")]:
        assert main([*base, "users", "add", name, "--role", role]) == 0
    capsys.readouterr()
    create = [*base, "alerts", "create", "--text", ALERT, "--short", SHORT, "--by", "pc.ashworth"]
    assert main(create) == 0
    shown = capsys.readouterr().out
    assert "post 1: twitter" in shown and "/280 characters, pending_approval" in shown
    assert "campusbot posts approve 1 2 3 --by <approver>" in shown
    assert main([*base, "alerts", "create", "--text", ALERT, "--by", "pc.ashworth"]) == 1
    assert "too long for twitter" in capsys.readouterr().err
    assert main([*base, "posts", "approve", "1", "2", "3", "--by", "cara"]) == 0
    capsys.readouterr()
    assert main([*base, "posts", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert [(p["kind"], p["status"]) for p in listed] == [("alert", "approved")] * 3
