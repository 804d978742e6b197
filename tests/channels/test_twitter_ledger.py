"""The X call ledger and the monthly budget: every call costed, and only posts and backfills stop.

Runs on SQLite and PostgreSQL (the ``bot_app`` fixture), against recorded payloads.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import responses
from sqlmodel import col, select

from bot.app import App
from bot.clock import FixedClock
from bot.config import TwitterSettings, XCostSettings
from bot.crud import api_calls
from bot.crud.api_calls import BillableCall, BudgetExceeded, CostKind, DbLedger, MemoryLedger
from bot.errors import RateLimited, TransientError
from bot.messages import OutboundPost, OutboundReply
from bot.models import ApiCall, Post, PostKind, PostStatus
from bot.polling import poll_once
from channels.twitter import TwitterChannel
from schedules.publisher import publish_due
from tests.channels.test_twitter import API, DMS, MENTIONS, _recorded, fixture, settings
from tests.conftest import NOW

LONDON = ZoneInfo("Europe/London")
PRICES = XCostSettings()  # the defaults: X's published pay-per-use prices


def _channel(app: App, *, budget: float | None = None) -> TwitterChannel:
    base = settings()
    prices = PRICES.model_copy(update={"monthly_budget": budget})
    twitter = TwitterSettings(**{**dict(base), "cost": prices})
    return TwitterChannel(twitter, ledger=DbLedger(app.db, prices, app.clock, LONDON))


def _calls(app: App) -> list[ApiCall]:
    with app.db.session() as session:
        return list(session.exec(select(ApiCall).order_by(col(ApiCall.id))).all())


def _spend(app: App, dollars: float, at: datetime = NOW) -> None:
    """Earlier spending this month, as the ledger would hold it."""
    with app.db.session() as session:
        session.add(
            ApiCall(
                channel="twitter",
                method="POST",
                endpoint="/2/tweets",
                kind="write_with_url",
                units=1,
                cost_micros=round(dollars * 1_000_000),
                purpose="post",
                status=200,
                at=at,
            )
        )


def _reply(text: str, *, private: bool) -> OutboundReply:
    return OutboundReply(
        channel="twitter",
        text=text,
        private=private,
        in_reply_to_external_id="2123563772908656026",
        conversation_id="c",
        recipient_id="1733810427297415168",
    )


def test_every_call_is_in_the_ledger_with_its_estimated_cost(bot_app: App) -> None:
    channel = _channel(bot_app)
    with responses.RequestsMock() as rsps:
        _recorded(rsps, ["mentions_page1.json", "mentions_page2.json"], "dm_events.json")
        poll_once(bot_app, "twitter", channel)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{API}/tweets", json=fixture("tweet_create_response.json"))
        rsps.add(
            responses.POST,
            f"{API}/dm_conversations/with/1733810427297415168/messages",
            json=fixture("dm_send_response.json"),
        )
        rsps.add(responses.POST, f"{API}/tweets", json=fixture("error_503.json"), status=503)
        channel.reply(
            _reply("Report it online: https://www.lancashire.police.uk/ro/report/", private=False)
        )
        channel.reply(_reply("Call 999 now.", private=True))
        with pytest.raises(TransientError, match="503"):
            channel.publish(OutboundPost(channel="twitter", text="Lock your bike"))

    rows = [
        (c.method, c.endpoint, c.kind, c.units, c.cost_micros, c.purpose, c.status)
        for c in _calls(bot_app)
    ]
    page1, page2 = (len(fixture(p)["data"]) for p in ("mentions_page1.json", "mentions_page2.json"))
    events = len(fixture("dm_events.json")["data"])
    assert rows == [
        ("GET", "/2/users/:id/mentions", "post_read", page1, page1 * 5_000, "backfill", 200),
        ("GET", "/2/users/:id/mentions", "post_read", page2, page2 * 5_000, "backfill", 200),
        ("GET", "/2/dm_events", "dm_read", events, events * 10_000, "backfill", 200),
        ("POST", "/2/tweets", "write_with_url", 1, 200_000, "reply", 200),
        ("POST", "/2/dm_conversations/with/:id/messages", "write", 1, 15_000, "reply", 200),
        ("POST", "/2/tweets", "write", 0, 0, "post", 503),  # refused: not billed
    ]
    with bot_app.db.session() as session:
        status = api_calls.budget_status(session, PRICES, now=NOW, tz=LONDON)
    total = sum(r[4] for r in rows)
    assert status.spent_micros == total
    assert total == 285_000  # 6 posts, 4 DM events, a reply with a link, a DM
    assert status.describe() == "X spend this month (November 2026): $0.285, no budget set"


def test_a_spent_budget_stops_campaign_posts_but_not_polling_or_replies(
    bot_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="channels.twitter")
    channel = _channel(bot_app, budget=40.0)
    _spend(bot_app, 39.98)
    with responses.RequestsMock() as rsps:  # no call may reach X for the post
        with pytest.raises(BudgetExceeded) as caught:
            channel.publish(
                OutboundPost(channel="twitter", text="Bike marking https://uclan.ac.uk/bikes")
            )
        assert len(rsps.calls) == 0
    # $0.015 still fits where a $0.20 post with a link did not
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{API}/tweets", json=fixture("tweet_create_response.json"))
        channel.publish(OutboundPost(channel="twitter", text="Lock your bike at the SU racks"))
    assert isinstance(caught.value, RateLimited)
    assert caught.value.retry_at == datetime(2026, 12, 1, tzinfo=UTC)  # midnight in London, GMT
    assert str(caught.value).startswith(
        "X budget nearly spent: $39.98 of $40.00 this month (November 2026), and this would "
        "cost $0.20 more"
    )
    _spend(bot_app, 1.0)
    with responses.RequestsMock() as rsps:
        with pytest.raises(BudgetExceeded, match=r"X budget reached: \$40\.995 of \$40\.00"):
            channel.publish(OutboundPost(channel="twitter", text="Lock your bike"))
    with responses.RequestsMock() as rsps:  # polling with a saved position, and replies, go on
        _recorded(rsps, ["mentions_page1.json", "mentions_page2.json"], "dm_events.json")
        channel.fetch('{"mentions": "2120000000000000000", "dm": "2120000000000000000"}')
        rsps.add(responses.POST, f"{API}/tweets", json=fixture("tweet_create_response.json"))
        rsps.add(
            responses.POST,
            f"{API}/dm_conversations/with/1733810427297415168/messages",
            json=fixture("dm_send_response.json"),
        )
        channel.reply(_reply("Please DM us the details.", private=False))
        channel.reply(_reply("Call 999 now.", private=True))
    purposes = [c.purpose for c in _calls(bot_app) if c.status == 200]
    assert purposes.count("poll") == 3 and purposes.count("reply") == 2
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("campaign post not sent: X budget reached") for m in logged)


def test_a_spent_budget_cuts_a_first_backfill_to_the_newest_page(
    bot_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="channels.twitter")
    channel = _channel(bot_app, budget=5.0)
    _spend(bot_app, 5.0)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        _recorded(rsps, ["mentions_page1.json", "mentions_page2.json"], "dm_events.json")
        report = poll_once(bot_app, "twitter", channel)
        asked = [str(c.request.url) for c in rsps.calls]
    assert sum(1 for url in asked if MENTIONS.match(url)) == 1  # page 2 is history: skipped
    assert sum(1 for url in asked if DMS.match(url)) == 1
    assert report.complete  # and not asked for again every round
    assert "reading only the newest page" in caplog.text
    with responses.RequestsMock() as rsps:
        _recorded(rsps, ["mentions_empty.json"], "dm_events.json")
        poll_once(bot_app, "twitter", channel)
        since = str(rsps.calls[0].request.url)
    assert f"since_id={fixture('mentions_page1.json')['meta']['newest_id']}" in since


def test_the_publisher_keeps_a_post_the_budget_refused(bot_app: App) -> None:
    """BudgetExceeded is a RateLimited: today's publisher already puts the post back."""
    channel = _channel(bot_app, budget=1.0)
    _spend(bot_app, 1.5)
    with bot_app.db.session() as session:
        session.add(
            Post(
                kind=PostKind.CAMPAIGN,
                channel="twitter",
                campaign="bikes",
                text="Bike marking at the SU this Wednesday",
                status=PostStatus.APPROVED,
                scheduled_for=NOW - timedelta(minutes=1),
                created_by="pat",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    with responses.RequestsMock():
        report = publish_due(
            bot_app.db, {"twitter": channel}, bot_app.clock, grace=timedelta(hours=2)
        )
    with bot_app.db.session() as session:
        post = session.exec(select(Post)).one()
    assert (report.published, report.retrying) == (0, 1)
    assert post.status == PostStatus.APPROVED
    assert post.not_before == datetime(2026, 12, 1, tzinfo=UTC)
    assert (post.last_error or "").startswith("X budget reached: $1.50 of $1.00 this month")


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [  # the month is London's: 00:30 on 1 July BST is still 30 June in UTC
        (
            datetime(2026, 6, 30, 23, 30, tzinfo=UTC),
            datetime(2026, 6, 30, 23, 0, tzinfo=UTC),
            datetime(2026, 7, 31, 23, 0, tzinfo=UTC),
        ),
        (
            datetime(2026, 12, 31, 23, 59, tzinfo=UTC),
            datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
            datetime(2027, 1, 1, 0, 0, tzinfo=UTC),
        ),
    ],
)
def test_budget_months_follow_the_bot_timezone(
    now: datetime, start: datetime, end: datetime
) -> None:
    assert api_calls.month_bounds(now, LONDON) == (start, end)


def test_last_months_spending_does_not_count(bot_app: App) -> None:
    _spend(bot_app, 50.0, at=datetime(2026, 10, 31, 23, 59, tzinfo=UTC))
    _spend(bot_app, 2.5)
    prices = PRICES.model_copy(update={"monthly_budget": 40.0})
    with bot_app.db.session() as session:
        status = api_calls.ensure_within_budget(
            session, prices, now=NOW, tz=LONDON, cost_micros=15_000
        )
        assert status.describe() == "X spend this month (November 2026): $2.50 of $40.00"
        with pytest.raises(BudgetExceeded):
            api_calls.ensure_within_budget(
                session, prices, now=NOW, tz=LONDON, cost_micros=38 * 1_000_000
            )


def test_a_posts_link_goes_in_its_text_and_is_billed_as_one(bot_app: App) -> None:
    channel = _channel(bot_app)
    link = "https://www.uclan.ac.uk/student-life/safety"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{API}/tweets", json=fixture("tweet_create_response.json"))
        channel.publish(OutboundPost(channel="twitter", text="Staying safe at night", link=link))
        sent = rsps.calls[0].request.body
    assert json.loads(sent or b"{}")["text"] == f"Staying safe at night\n{link}"
    (call,) = _calls(bot_app)
    assert (call.kind, call.cost_micros) == ("write_with_url", 200_000)


def test_calls_kept_in_memory_count_this_month_only() -> None:
    clock = FixedClock(datetime(2026, 10, 31, 12, 0, tzinfo=UTC))
    ledger = MemoryLedger(PRICES.model_copy(update={"monthly_budget": 1.0}), clock, LONDON)
    call = BillableCall(
        "twitter", "POST", "/2/tweets", CostKind.WRITE_WITH_URL, 1, 200_000, "post", 200
    )
    for _ in range(6):
        ledger.record(call)
    assert ledger.budget().reached
    clock.advance(timedelta(days=1))
    ledger.record(call)
    assert len(ledger.calls) == 1
    assert ledger.budget().describe() == "X spend this month (November 2026): $0.20 of $1.00"
