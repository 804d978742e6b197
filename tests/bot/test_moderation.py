"""Suggesting, hiding and answering privately: public comments that should not stay up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
from pydantic import SecretStr
from sqlmodel import select

from bot.app import App
from bot.clock import FixedClock
from bot.config import FacebookSettings
from bot.crud import audit
from bot.delivery import deliver_due
from bot.errors import RateLimited, TransientError
from bot.models import AuditEntry, Message, OutboundMessage, OutboxStatus
from bot.moderation import (
    ModerationError,
    Reason,
    hide_comment,
    private_reply_block,
    queue_private_reply,
    suggest_moderation,
)
from channels.base import Batch
from channels.facebook import FacebookChannel
from classifiers.base import Classification, Intent, Scenario
from tests.channels.test_facebook import GRAPH, PAGE, fixture

PHOTO_POST = f"{PAGE}_122188998877665544"
DISCLOSURE = "122188998877665544_1311230011223344"  # names someone and discloses groping
BIKE_MARKING = "122188998877665544_1311224455667788"  # an everyday question
AFTER = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # the morning after the comments


@pytest.fixture
def fb(bot_app: App) -> FacebookChannel:
    assert isinstance(bot_app.clock, FixedClock)
    bot_app.clock.advance(AFTER - bot_app.clock.now())
    return FacebookChannel(
        FacebookSettings(
            enabled=True,
            page_id=PAGE,
            page_access_token=SecretStr("page-token"),
            app_secret=SecretStr("test-app-secret"),
            verify_token=SecretStr("test-verify-token"),
        ),
        clock=bot_app.clock,
    )


@pytest.fixture
def comments(bot_app: App, fb: FacebookChannel) -> dict[str, Message]:
    """The photo post's recorded comments, polled, stored and classified."""
    batch = Batch()
    for comment in fixture("comments_photo_post.json")["data"]:
        raw = json.dumps({"post_id": PHOTO_POST, **comment}).encode()
        batch.messages.extend(fb.parse_polled(raw).messages)
    bot_app.pipeline.run(batch, source="facebook:poll")
    with bot_app.db.session() as session:
        return {m.external_id: m for m in session.exec(select(Message)).all()}


def _message(text: str, **fields: Any) -> Message:
    at = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": 1,
        "channel": "facebook",
        "external_id": "122187654321098765_1093849999999999",
        "conversation_id": f"{PAGE}_122187654321098765",
        "author_id": "6839201746502918",
        "text": text,
        "private": False,
        "received_at": at,
        "ingested_at": at,
        **fields,
    }
    return Message(**values)


def _tags(**values: Any) -> Classification:
    return Classification(**values)


def test_a_disclosure_that_names_someone_is_suggested_with_reasons(
    comments: dict[str, Message],
) -> None:
    suggestion = suggest_moderation(comments[DISCLOSURE])
    assert suggestion is not None
    assert set(suggestion.reasons) >= {Reason.SEXUAL_OFFENCE, Reason.NAMES_PERSON}
    assert suggestion.names == ("Callum Pryce",)  # named in the text and tagged: once
    assert "groped" in suggestion.summary()
    assert suggestion.comment_id == DISCLOSURE
    assert suggestion.private_reply_until == comments[DISCLOSURE].received_at + timedelta(days=7)
    assert suggest_moderation(comments[BIKE_MARKING]) is None


def test_a_risk_to_life_is_suggested_from_the_classification() -> None:
    text = "my housemate keeps saying she'll end it all, she's been on the bridge tonight"
    risky = _tags(scenarios=(Scenario.MENTAL_HEALTH,), risk=True, urgent=True)
    suggestion = suggest_moderation(_message(text), risky)
    assert suggestion is not None and Reason.RISK_TO_LIFE in suggestion.reasons
    # the tags stored on a processed message count the same
    stored = suggest_moderation(_message(text, risk=True, scenarios=["mental_health"]))
    assert stored is not None and stored.reasons == suggestion.reasons


@pytest.mark.parametrize(
    ("text", "tags", "expected"),
    [
        (
            "I got attacked by a lad called Kieran near Friargate on Saturday",
            _tags(scenarios=(Scenario.VIOLENT_CRIME,), intent=Intent.REPORT_INCIDENT),
            {Reason.NAMES_PERSON},
        ),
        (
            "Jamie Doyle punched me outside the library",
            _tags(),  # even when the model missed it, the cue is a crime
            {Reason.NAMES_PERSON},
        ),
        (
            "my flatmate was sexually assaulted walking back from Source",
            _tags(scenarios=(Scenario.VIOLENT_CRIME,)),
            {Reason.SEXUAL_OFFENCE},
        ),
        (
            "the lad who took my bike drives a silver corsa PN19 XKT, seen him at Foster",
            _tags(scenarios=(Scenario.THEFT,), intent=Intent.INTELLIGENCE),
            {Reason.PERSONAL_DATA},
        ),
    ],
)
def test_what_each_disclosure_is_suggested_for(
    text: str, tags: Classification, expected: set[Reason]
) -> None:
    suggestion = suggest_moderation(_message(text), tags)
    assert suggestion is not None and set(suggestion.reasons) == expected


@pytest.mark.parametrize(
    ("text", "fields", "tags"),
    [
        ("Where can I get a rape alarm before freshers?", {}, _tags(intent=Intent.ASK_ADVICE)),
        ("Can Sarah from the SU come to the bike marking?", {}, _tags()),
        ("It was Jake's birthday so we went to Source", {}, _tags()),
        ("Bike stolen from Maudland Bank, lock cut", {}, _tags(scenarios=(Scenario.THEFT,))),
        # private messages are not on show, and only Facebook comments can be hidden
        ("he groped me at the SU", {"private": True}, _tags(scenarios=(Scenario.VIOLENT_CRIME,))),
        ("he groped me at the SU", {"channel": "twitter"}, _tags()),
    ],
)
def test_nothing_is_suggested_for_ordinary_or_private_messages(
    text: str, fields: dict[str, Any], tags: Classification
) -> None:
    assert suggest_moderation(_message(text, **fields), tags) is None


def test_an_officer_hides_a_comment_and_it_is_audited(
    bot_app: App, fb: FacebookChannel, comments: dict[str, Message]
) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST, f"{GRAPH}/{DISCLOSURE}", json=fixture("hide_comment_response.json")
        )
        with bot_app.db.session() as session:
            hide_comment(
                session, fb, comments[DISCLOSURE], officer="pc.ahmed", at=bot_app.clock.now()
            )
        sent = parse_qs(str(rsps.calls[0].request.body))
    assert sent["is_hidden"] == ["true"]
    with bot_app.db.session() as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "comment.hidden")).one()
        assert audit.verify(session).ok
    assert (entry.actor, entry.entity_id) == ("pc.ahmed", str(comments[DISCLOSURE].id))
    assert "groped" not in json.dumps(entry.detail)  # ids only, never the text


def test_a_hide_that_fails_records_nothing_and_says_when_to_retry(
    bot_app: App, fb: FacebookChannel, comments: dict[str, Message]
) -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{GRAPH}/{DISCLOSURE}",
            json=fixture("error_613.json"),
            status=400,
            headers=fixture("rate_limit_headers.json")["throttled"],
        )
        rsps.add(responses.POST, f"{GRAPH}/{DISCLOSURE}", body=requests.ReadTimeout("slow"))
        with bot_app.db.session() as session:
            with pytest.raises(RateLimited) as caught:
                hide_comment(session, fb, comments[DISCLOSURE], officer="pc.ahmed", at=AFTER)
            # hiding twice is harmless, so a timeout is worth another go
            with pytest.raises(TransientError):
                hide_comment(session, fb, comments[DISCLOSURE], officer="pc.ahmed", at=AFTER)
    assert caught.value.retry_at == AFTER + timedelta(minutes=12)
    with bot_app.db.session() as session:
        actions = session.exec(select(AuditEntry.action)).all()
    assert not any(action.startswith("comment.") for action in actions)


def test_a_private_reply_goes_out_once_to_the_comment(
    bot_app: App, fb: FacebookChannel, comments: dict[str, Message]
) -> None:
    comment = comments[DISCLOSURE]
    text = "Thank you for telling us. Please message us here so we can talk in private."
    with bot_app.db.session() as session:
        assert private_reply_block(session, comment, now=AFTER) is None
        queue_private_reply(session, comment, text, officer="pc.ahmed", at=AFTER)
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST, f"{GRAPH}/{PAGE}/messages", json=fixture("private_reply_response.json")
        )
        report = deliver_due(bot_app.db, {"facebook": fb}, bot_app.clock)
        sent = parse_qs(str(rsps.calls[0].request.body))
    assert report.sent == 1
    assert json.loads(sent["recipient"][0]) == {"comment_id": DISCLOSURE}
    assert json.loads(sent["message"][0]) == {"text": text}
    with bot_app.db.session() as session:
        row = session.exec(
            select(OutboundMessage).where(OutboundMessage.created_by == "pc.ahmed")
        ).one()
        assert row.status == OutboxStatus.SENT
        assert row.external_id == fixture("private_reply_response.json")["message_id"]
        block = private_reply_block(session, comment, now=AFTER)
        assert block is not None and "already" in block
        with pytest.raises(ModerationError, match="allows one"):
            queue_private_reply(session, comment, "again", officer="sgt.hughes", at=AFTER)


def test_an_officers_private_reply_replaces_an_unsent_acknowledgement(
    bot_app: App, comments: dict[str, Message]
) -> None:
    comment = comments[DISCLOSURE]
    with bot_app.db.session() as session:
        automatic = session.exec(
            select(OutboundMessage).where(OutboundMessage.in_reply_to_message_id == comment.id)
        ).all()
        queue_private_reply(session, comment, "We have seen this.", officer="pc.ahmed", at=AFTER)
    with bot_app.db.session() as session:
        rows = session.exec(
            select(OutboundMessage).where(OutboundMessage.in_reply_to_message_id == comment.id)
        ).all()
    waiting = [r for r in rows if r.status != OutboxStatus.FAILED]
    assert [(r.created_by, r.status) for r in waiting] == [("pc.ahmed", OutboxStatus.QUEUED)]
    withdrawn = [r for r in rows if r.status == OutboxStatus.FAILED]
    # the first comment from this person was acknowledged automatically, privately,
    # held for approval of the template
    assert [(a.kind, a.private, a.status) for a in automatic] == [
        ("auto_ack", True, OutboxStatus.NEEDS_APPROVAL)
    ]
    assert [r.id for r in withdrawn] == [a.id for a in automatic]
    assert all("withdrawn" in str(r.last_error) for r in withdrawn)


@pytest.mark.parametrize(
    ("later", "text", "why"),
    [
        (timedelta(days=8), "Are you safe?", "within 7 days"),
        (timedelta(hours=1), "   ", "empty"),
        (timedelta(hours=1), "x" * 2001, "at most 2000"),
    ],
)
def test_a_private_reply_that_facebook_would_refuse_is_refused_here(
    bot_app: App, comments: dict[str, Message], later: timedelta, text: str, why: str
) -> None:
    comment = comments[DISCLOSURE]
    with bot_app.db.session() as session:
        with pytest.raises(ModerationError, match=why):
            queue_private_reply(
                session, comment, text, officer="pc.ahmed", at=comment.received_at + later
            )
    with bot_app.db.session() as session:
        rows = session.exec(select(OutboundMessage).where(OutboundMessage.created_by == "pc.ahmed"))
        assert rows.all() == []


def test_only_public_facebook_comments_can_be_moderated(bot_app: App, fb: FacebookChannel) -> None:
    dm = _message("he groped me at the SU", private=True, conversation_id="6839201746502918")
    with bot_app.db.session() as session:
        with pytest.raises(ModerationError, match="not a public Facebook comment"):
            hide_comment(session, fb, dm, officer="pc.ahmed", at=AFTER)
        assert private_reply_block(session, dm, now=AFTER) is not None
