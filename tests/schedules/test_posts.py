"""Planning, approval and publishing: nothing unapproved goes out, nothing goes out twice."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jinja2 import UndefinedError
from jinja2.exceptions import SecurityError
from sqlmodel import select

from bot import posts
from bot.app import App
from bot.clock import FixedClock
from bot.config import ApprovalSettings
from bot.crud import audit, users
from bot.errors import AuthError, RateLimited, TransientError
from bot.messages import PublishedPost
from bot.models import AuditEntry, Post, PostKind, PostStatus, SurveyLink
from bot.templating import render_text
from channels.fake import FakeChannel
from channels.limits import weighted_length
from schedules.campaigns import load_campaign
from schedules.planner import plan
from schedules.publisher import publish_due
from tests.schedules.test_campaigns import write

LONDON = ZoneInfo("Europe/London")
GRACE = timedelta(hours=2)
ONE_TIER = ApprovalSettings()
TWO_TIERS = ApprovalSettings(
    tiers={"default": [["comms_officer"]], "twitter": [["comms_officer"], ["user:insp.khan"]]}
)


@pytest.fixture
def people(bot_app: App) -> App:
    with bot_app.db.session() as session:
        for name, roles in [
            ("pat", ["officer"]),
            ("cara", ["comms_officer"]),
            ("dan", ["comms_officer"]),
            ("ana", ["analyst"]),
            ("insp.khan", ["officer"]),
        ]:
            users.add(session, username=name, roles=roles, at=bot_app.clock.now(), by="admin")
    return bot_app


@pytest.fixture
def planned(people: App, tmp_path: Path) -> App:
    campaign = load_campaign(write(tmp_path, start="2026-11-23", days=7))
    with people.db.session() as session:
        plan(
            session,
            [campaign],
            tz=LONDON,
            start=date(2026, 11, 23),
            days=7,
            now=people.clock.now(),
            by="pat",
            base_url="https://bot.example.org",
        )
    return people


def _posts(app: App) -> list[Post]:
    with app.db.session() as session:
        return list(session.exec(select(Post).order_by(Post.id)))  # type: ignore[arg-type]


def _do(app: App, action: str, post_id: int, by: str, **kwargs: object) -> Post:
    with app.db.session() as session:
        post: Post = getattr(posts, action)(session, post_id, by=by, at=app.clock.now(), **kwargs)
        return post


def test_plan_makes_drafts_once_with_counted_survey_links(planned: App, tmp_path: Path) -> None:
    made = _posts(planned)
    assert len(made) == 6  # Mon, Wed, Fri x twitter, facebook
    assert {p.status for p in made} == {PostStatus.DRAFT}
    tweet = next(p for p in made if p.channel == "twitter")
    assert weighted_length(tweet.text) <= 280
    assert "https://bot.example.org/s/" in tweet.text and "#UCLanCampusCops" in tweet.text
    with planned.db.session() as session:
        links = session.exec(select(SurveyLink)).all()
        again = plan(
            session,
            [load_campaign(tmp_path / "bikes.yaml")],
            tz=LONDON,
            start=date(2026, 11, 23),
            days=7,
            now=planned.clock.now(),
            by="pat",
            base_url="https://bot.example.org",
        )
    assert {link.channel for link in links} == {"twitter", "facebook"}
    assert (again.created, again.existing) == (0, 6)
    assert len(_posts(planned)) == 6


def test_full_approval_path_is_audited(planned: App) -> None:
    post_id = _posts(planned)[0].id or 0
    _do(planned, "submit", post_id, "pat")
    approved = _do(planned, "approve", post_id, "cara", policy=ONE_TIER)
    assert approved.status == PostStatus.APPROVED
    with planned.db.session() as session:
        trail = [
            e.detail
            for e in session.exec(select(AuditEntry))
            if e.entity == "post" and e.entity_id == str(post_id) and e.action == "post.transition"
        ]
        assert audit.verify(session).ok
    assert [(t["from"], t["to"]) for t in trail] == [
        ("draft", "pending_approval"),
        ("pending_approval", "approved"),
    ]


def test_refused_transitions(planned: App) -> None:
    post_id = _posts(planned)[0].id or 0
    with pytest.raises(posts.WorkflowError, match="only a pending post is approved"):
        _do(planned, "approve", post_id, "cara", policy=ONE_TIER)
    with pytest.raises(posts.WorkflowError, match="only a failed post is retried"):
        _do(planned, "retry", post_id, "cara")
    _do(planned, "submit", post_id, "pat")
    with pytest.raises(posts.WorkflowError, match="only a draft can be submitted"):
        _do(planned, "submit", post_id, "pat")
    with pytest.raises(posts.WorkflowError, match="nobody approves their own post"):
        _do(planned, "approve", post_id, "pat", policy=ONE_TIER)
    with pytest.raises(posts.WorkflowError, match="needs one of comms_officer"):
        _do(planned, "approve", post_id, "ana", policy=ONE_TIER)
    with pytest.raises(posts.WorkflowError, match="not an active user"):
        _do(planned, "approve", post_id, "stranger", policy=ONE_TIER)
    with pytest.raises(posts.WorkflowError, match="needs a note"):
        _do(planned, "reject", post_id, "cara", note="  ")
    assert _do(planned, "reject", post_id, "cara", note="add the 101 number").status == "rejected"
    with pytest.raises(posts.WorkflowError, match="only a pending post is rejected"):
        _do(planned, "reject", post_id, "cara", note="again")


def test_two_tiers_need_two_different_people(planned: App) -> None:
    tweet = next(p for p in _posts(planned) if p.channel == "twitter")
    post_id = tweet.id or 0
    _do(planned, "submit", post_id, "pat")
    assert _do(planned, "approve", post_id, "cara", policy=TWO_TIERS).status == "pending_approval"
    with pytest.raises(posts.WorkflowError, match="already approved a tier"):
        _do(planned, "approve", post_id, "cara", policy=TWO_TIERS)
    with pytest.raises(posts.WorkflowError, match="tier 2 of 2 for twitter needs one of"):
        _do(planned, "approve", post_id, "dan", policy=TWO_TIERS)
    assert _do(planned, "approve", post_id, "insp.khan", policy=TWO_TIERS).status == "approved"


def test_an_edit_after_approval_needs_approval_again(planned: App) -> None:
    post_id = _posts(planned)[0].id or 0
    _do(planned, "submit", post_id, "pat")
    _do(planned, "approve", post_id, "cara", policy=ONE_TIER)
    edited = _do(planned, "edit", post_id, "pat", text="New wording with 101 in it")
    assert edited.status == PostStatus.DRAFT
    with planned.db.session() as session:
        assert posts.approvals_of(session, post_id) == []
    with pytest.raises(posts.WorkflowError, match="allows 10"):
        _do(planned, "edit", post_id, "pat", text="x" * 11, max_chars=10)


def _approve_all(app: App) -> None:
    for post in _posts(app):
        _do(app, "submit", post.id or 0, "pat")
        _do(app, "approve", post.id or 0, "cara", policy=ONE_TIER)


def _at(app: App, when: datetime) -> None:
    clock = app.clock
    assert isinstance(clock, FixedClock)
    clock.advance(when - clock.now())


def test_only_approved_due_posts_are_published_once(planned: App) -> None:
    drafts = _posts(planned)
    _do(planned, "submit", drafts[0].id or 0, "pat")
    _do(planned, "approve", drafts[0].id or 0, "cara", policy=ONE_TIER)  # Mon twitter
    channels = {"twitter": FakeChannel(), "facebook": FakeChannel()}
    _at(planned, datetime(2026, 11, 23, 12, 29, tzinfo=UTC))
    assert publish_due(planned.db, channels, planned.clock, grace=GRACE).published == 0
    _at(planned, datetime(2026, 11, 23, 12, 31, tzinfo=UTC))
    first = publish_due(planned.db, channels, planned.clock, grace=GRACE)
    again = publish_due(planned.db, channels, planned.clock, grace=GRACE)
    assert (first.published, again.published) == (1, 0)
    assert len(channels["twitter"].posts) == 1 and channels["facebook"].posts == []
    published = _posts(planned)[0]
    assert published.status == PostStatus.PUBLISHED and published.external_id == "fake-1"


def test_pause_stops_campaigns_but_not_alerts(planned: App) -> None:
    _approve_all(planned)
    _at(planned, datetime(2026, 11, 23, 12, 31, tzinfo=UTC))
    with planned.db.session() as session:
        posts.pause_all(session, by="cara", at=planned.clock.now(), reason="major incident")
        session.add(
            Post(
                kind=PostKind.ALERT,
                channel="twitter",
                text="Road closed: Fylde Rd",
                status=PostStatus.APPROVED,
                scheduled_for=planned.clock.now(),
                created_by="pat",
                created_at=planned.clock.now(),
                updated_at=planned.clock.now(),
            )
        )
    channels = {"twitter": FakeChannel(), "facebook": FakeChannel()}
    report = publish_due(planned.db, channels, planned.clock, grace=GRACE)
    assert report.paused and report.published == 1
    assert [p.text for p in channels["twitter"].posts] == ["Road closed: Fylde Rd"]
    with planned.db.session() as session:
        posts.resume(session, by="cara", at=planned.clock.now())
    assert publish_due(planned.db, channels, planned.clock, grace=GRACE).published == 2


def test_rate_limit_and_expired_token_keep_posts_queued(planned: App) -> None:
    _approve_all(planned)
    twitter, facebook = FakeChannel(), FakeChannel()
    reset = datetime(2026, 11, 23, 12, 50, tzinfo=UTC)
    twitter.fail_next(RateLimited("429", retry_at=reset))
    facebook.fail_next(AuthError("190 token expired"))
    _at(planned, datetime(2026, 11, 23, 12, 31, tzinfo=UTC))
    report = publish_due(
        planned.db, {"twitter": twitter, "facebook": facebook}, planned.clock, grace=GRACE
    )
    assert report.published == 0 and report.retrying == 2
    assert {p.status for p in _posts(planned)} == {PostStatus.APPROVED}
    _at(planned, reset + timedelta(minutes=1))
    report = publish_due(
        planned.db, {"twitter": twitter, "facebook": facebook}, planned.clock, grace=GRACE
    )
    assert report.published == 2


def _stuck_twitter_post(app: App) -> tuple[int, str]:
    """A post a worker claimed and sent to the API, then died before recording the answer."""
    _approve_all(app)
    with app.db.session() as session:
        post = session.exec(select(Post).where(Post.channel == "twitter")).first()
        assert post is not None and post.id is not None
        post.status = PostStatus.PUBLISHING
        post.attempt_started_at = datetime(2026, 11, 23, 12, 31, tzinfo=UTC)
        session.add(post)
        return post.id, post.text


def _status(app: App, post_id: int) -> Post:
    with app.db.session() as session:
        post = session.get(Post, post_id)
        assert post is not None
        return post


def test_interrupted_publish_found_on_the_platform_is_marked_published(planned: App) -> None:
    stuck_id, text = _stuck_twitter_post(planned)
    twitter = FakeChannel()
    twitter.published.append(  # it did go out, with X's link shortening and spacing
        PublishedPost(
            external_id="2124110132034748999",
            text=re.sub(r"https?://\S+", "https://t.co/Ab12Cd", text).replace("\n", "  \n"),
            published_at=datetime(2026, 11, 23, 12, 31, 2, tzinfo=UTC),
        )
    )
    _at(planned, datetime(2026, 11, 23, 12, 45, tzinfo=UTC))
    publish_due(planned.db, {"twitter": twitter}, planned.clock, grace=GRACE)
    post = _status(planned, stuck_id)
    assert post.status == PostStatus.PUBLISHED
    assert post.external_id == "2124110132034748999"
    assert twitter.posts == []  # not sent a second time


def test_interrupted_publish_missing_from_the_platform_is_sent_once(planned: App) -> None:
    stuck_id, text = _stuck_twitter_post(planned)
    twitter = FakeChannel()
    twitter.published.append(  # an older post with the same words does not count
        PublishedPost(
            external_id="1",
            text=text,
            published_at=datetime(2026, 11, 16, 12, 30, tzinfo=UTC),
        )
    )
    _at(planned, datetime(2026, 11, 23, 12, 45, tzinfo=UTC))
    publish_due(planned.db, {"twitter": twitter}, planned.clock, grace=GRACE)
    publish_due(planned.db, {"twitter": twitter}, planned.clock, grace=GRACE)
    assert [p.text for p in twitter.posts] == [text]
    assert _status(planned, stuck_id).status == PostStatus.PUBLISHED


def test_interrupted_publish_is_failed_when_the_platform_cannot_say(planned: App) -> None:
    stuck_id, _ = _stuck_twitter_post(planned)
    twitter = FakeChannel()
    twitter.fail_next(TransientError("X unreachable", channel="twitter"))
    _at(planned, datetime(2026, 11, 23, 12, 45, tzinfo=UTC))
    publish_due(planned.db, {"twitter": twitter}, planned.clock, grace=GRACE)
    post = _status(planned, stuck_id)
    assert post.status == PostStatus.FAILED
    assert "check the platform" in (post.last_error or "")
    assert twitter.posts == []


def test_unapproved_posts_expire_when_their_time_passes(planned: App) -> None:
    _at(planned, datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    with planned.db.session() as session:
        expired = posts.expire_overdue(session, at=planned.clock.now(), grace=GRACE)
    assert expired == 2  # Monday's two drafts
    assert sorted(p.status for p in _posts(planned)).count("expired") == 2


@pytest.mark.parametrize(
    "source",
    [
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ undefined_variable }}",
    ],
)
def test_post_templates_render_in_a_strict_sandbox(tmp_path: Path, source: str) -> None:
    (tmp_path / "evil.txt.j2").write_text(source)
    with pytest.raises((SecurityError, UndefinedError)):
        render_text("evil.txt.j2", root=tmp_path)


def test_an_approval_racing_an_edit_loses(planned: App) -> None:
    post_id = _posts(planned)[0].id or 0
    _do(planned, "submit", post_id, "pat")

    def approve_after_a_concurrent_edit() -> None:
        with planned.db.session() as approver:
            pending = approver.get(Post, post_id)  # the approver has the post open...
            assert pending is not None
            _do(planned, "edit", post_id, "pat", text="Changed while you were reading")
            posts.approve(approver, post_id, by="cara", at=planned.clock.now(), policy=ONE_TIER)

    with pytest.raises(posts.WorkflowError, match="changed by someone else"):
        approve_after_a_concurrent_edit()
    assert _posts(planned)[0].status == PostStatus.DRAFT


def test_whoever_wrote_the_wording_cannot_approve_it(planned: App) -> None:
    post_id = _posts(planned)[0].id or 0
    _do(planned, "edit", post_id, "cara", text="Cara's own words about bike locks")
    _do(planned, "submit", post_id, "pat")
    with pytest.raises(posts.WorkflowError, match="their own wording"):
        _do(planned, "approve", post_id, "cara", policy=ONE_TIER)
    assert _do(planned, "approve", post_id, "dan", policy=ONE_TIER).status == "approved"
