"""The pipeline end to end on both databases: ingest, classify, triage, acknowledge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.app import App
from bot.crud import templates
from bot.messages import Capabilities, InboundMessage
from bot.models import (
    Case,
    DeadLetter,
    Message,
    MessageAttachment,
    OutboundMessage,
    OutboxStatus,
)
from channels import registry
from channels.base import Batch, Undeliverable
from tests.conftest import NOW, message_line


def _msg(external_id: str, text: str, **overrides: object) -> InboundMessage:
    return InboundMessage.model_validate(message_line(external_id, text, **overrides))


def _approve_auto_templates(app: App) -> None:
    with app.db.session() as session:
        for name in ("replies/acknowledgement.txt.j2", "replies/acknowledgement_public.txt.j2"):
            templates.approve(
                session, name=name, by="comms.lead", at=NOW, account=app.settings.account
            )


def test_same_message_twice_is_stored_once(bot_app: App) -> None:
    batch = Batch(messages=[_msg("1", "someone nicked my bike"), _msg("2", "thanks for the post")])
    first = bot_app.pipeline.ingest(batch, source="replay")
    again = bot_app.pipeline.ingest(batch, source="replay")
    within = bot_app.pipeline.ingest(
        Batch(messages=[_msg("3", "hello"), _msg("3", "hello")]), source="replay"
    )
    assert (first.stored, first.duplicates) == (2, 0)
    assert (again.stored, again.duplicates) == (0, 2)
    assert (within.stored, within.duplicates) == (1, 1)
    with bot_app.db.session() as session:
        assert len(session.exec(select(Message)).all()) == 3


def test_same_external_id_on_two_channels_is_two_messages(bot_app: App) -> None:
    report = bot_app.pipeline.ingest(
        Batch(messages=[_msg("9", "hi"), _msg("9", "hi", channel="facebook")]), source="replay"
    )
    assert report.stored == 2


def test_attachments_and_unicode_survive_storage(bot_app: App) -> None:
    text = "سرقت دراجتي 🚲 from outside the library \u202eoops"
    message = _msg(
        "1",
        text,
        attachments=[
            {
                "kind": "image",
                "url": "https://pbs.twimg.com/media/a.jpg",
                "media_type": "image/jpeg",
                "size": 1234,
                "sha256": "a" * 64,
            },
            {"kind": "video", "url": "https://video.twimg.com/v.mp4", "media_type": "video/mp4"},
        ],
    )
    bot_app.pipeline.ingest(Batch(messages=[message, message]), source="replay")
    with bot_app.db.session() as session:
        stored = session.exec(select(Message)).one()
        kinds = sorted(a.kind for a in session.exec(select(MessageAttachment)).all())
    assert stored.text == text
    assert stored.received_at.tzinfo is not None
    assert kinds == ["image", "video"]


def test_failures_are_dead_lettered_with_reason_and_bytes(bot_app: App) -> None:
    raw = b'{"broken": '
    bot_app.pipeline.ingest(
        Batch(
            messages=[_msg("1", "hi")],
            failures=[Undeliverable(raw, "line 2: malformed JSON", "f:2")],
        ),
        source="replay",
    )
    bot_app.pipeline.ingest(
        Batch(failures=[Undeliverable(raw, "line 2: malformed JSON", "f:2")]), source="replay"
    )
    with bot_app.db.session() as session:
        letters = session.exec(select(DeadLetter)).all()
        assert len(session.exec(select(Message)).all()) == 1
    assert len(letters) == 1
    assert letters[0].raw == raw
    assert letters[0].reason == "line 2: malformed JSON"
    assert letters[0].times_seen == 2


def test_priorities_and_sla_follow_the_classification(bot_app: App) -> None:
    bot_app.pipeline.ingest(
        Batch(
            messages=[
                _msg("risk", "my mate says he wants to kill himself tonight"),
                _msg("urgent", "fight outside the SU right now"),
                _msg("report", "someone stole my bike last week"),
                _msg("other", "what time is the freshers fair"),
            ]
        ),
        source="replay",
    )
    report = bot_app.pipeline.process_pending()
    assert report.processed == 4
    with bot_app.db.session() as session:
        cases = {
            m.external_id: session.get(Case, m.case_id) for m in session.exec(select(Message)).all()
        }
    received = NOW - timedelta(hours=1)
    expected = {
        "risk": ("P1", 15),
        "urgent": ("P2", 60),
        "report": ("P3", 480),
        "other": ("P4", 4320),
    }
    for external_id, (priority, minutes) in expected.items():
        case = cases[external_id]
        assert case is not None
        assert case.priority == priority, external_id
        assert case.sla_due_at == received + timedelta(minutes=minutes)
        assert case.status == "new"
        assert case.reference and case.reference.startswith("UCC-2026-")


def test_follow_up_joins_the_case_and_only_raises_priority(bot_app: App) -> None:
    conv = {"conversation_id": "dm-1", "author": {"id": "u1"}}
    bot_app.pipeline.ingest(
        Batch(messages=[_msg("a", "my laptop was stolen", **conv)]), source="replay"
    )
    bot_app.pipeline.process_pending()
    bot_app.pipeline.ingest(
        Batch(
            messages=[
                _msg("b", "he's still outside my door right now", **conv),
                _msg("c", "ok thanks", **conv),
            ]
        ),
        source="replay",
    )
    bot_app.pipeline.process_pending()
    with bot_app.db.session() as session:
        cases = session.exec(select(Case)).all()
        case_ids = {m.case_id for m in session.exec(select(Message)).all()}
    assert len(cases) == 1 and case_ids == {cases[0].id}
    assert cases[0].priority == "P2"
    assert cases[0].urgent is True
    assert "theft" in cases[0].scenarios


def test_acknowledgements_wait_for_template_approval(bot_app: App) -> None:
    bot_app.pipeline.ingest(
        Batch(messages=[_msg("1", "fight outside the SU right now")]), source="replay"
    )
    bot_app.pipeline.process_pending()
    _approve_auto_templates(bot_app)
    bot_app.pipeline.ingest(
        Batch(messages=[_msg("2", "fight on Friargate right now")]), source="replay"
    )
    bot_app.pipeline.process_pending()
    with bot_app.db.session() as session:
        statuses = [
            o.status
            for o in session.exec(select(OutboundMessage).order_by(col(OutboundMessage.id)))
        ]
    assert statuses == [OutboxStatus.NEEDS_APPROVAL, OutboxStatus.QUEUED]


def test_risk_acknowledgement_is_private_and_gives_999_and_a_support_line(bot_app: App) -> None:
    _approve_auto_templates(bot_app)
    bot_app.pipeline.ingest(
        Batch(
            messages=[
                _msg("1", "@UCLanCampusCops I can't cope I want to end my life", private=False)
            ]
        ),
        source="replay",
    )
    bot_app.pipeline.process_pending()
    with bot_app.db.session() as session:
        ack = session.exec(select(OutboundMessage)).one()
    assert ack.private is True  # a public mention on X is answered by DM
    assert "999" in ack.text and "116 123" in ack.text
    assert "not monitored 24/7" in ack.text
    assert "0800 555 111" in ack.text


def test_first_contact_gets_signposting_once_per_person(bot_app: App) -> None:
    _approve_auto_templates(bot_app)
    author = {"author": {"id": "same-person"}}
    bot_app.pipeline.ingest(
        Batch(
            messages=[
                _msg("1", "hi, when is the next drop in?", **author),
                _msg("2", "also do you do bike marking?", conversation_id="other", **author),
            ]
        ),
        source="replay",
    )
    bot_app.pipeline.process_pending()
    with bot_app.db.session() as session:
        acks = session.exec(select(OutboundMessage)).all()
    assert len(acks) == 1
    assert "101" in acks[0].text and "Crimestoppers" in acks[0].text


def test_public_auto_reply_at_most_once_per_conversation(
    bot_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        registry.PLATFORM_CAPABILITIES,
        "forum",
        Capabilities(public_reply=True, private_reply=False),
    )
    _approve_auto_templates(bot_app)
    thread = {"channel": "forum", "private": False, "conversation_id": "thread"}
    bot_app.pipeline.ingest(
        Batch(
            messages=[
                _msg("1", "fight on Friargate right now", author={"id": "x"}, **thread),
                _msg("2", "another fight kicking off now", author={"id": "y"}, **thread),
                _msg(
                    "3",
                    "fight outside the library now",
                    author={"id": "z"},
                    channel="unknown-platform",
                    private=False,
                ),
            ]
        ),
        source="replay",
    )
    bot_app.pipeline.process_pending()
    with bot_app.db.session() as session:
        acks = session.exec(select(OutboundMessage)).all()
    assert [(a.channel, a.private, a.in_reply_to_external_id) for a in acks] == [
        ("forum", False, "1")
    ]
    assert len(acks[0].text) <= 280


def test_public_message_not_addressed_to_account_gets_no_auto_reply(bot_app: App) -> None:
    _approve_auto_templates(bot_app)
    bot_app.pipeline.ingest(
        Batch(
            messages=[
                _msg(
                    "1",
                    "massive fight outside the SU right now lol",
                    private=False,
                    addressed_to_account=False,
                )
            ]
        ),
        source="replay",
    )
    report = bot_app.pipeline.process_pending()
    with bot_app.db.session() as session:
        assert session.exec(select(OutboundMessage)).all() == []
        case = session.exec(select(Case)).one()
    assert report.acknowledgements == 0
    assert case.priority == "P2"  # still triaged for an officer


def test_message_not_in_english_is_flagged_for_a_person(bot_app: App) -> None:
    bot_app.pipeline.ingest(
        Batch(messages=[_msg("1", "me han robado el móvil en la biblioteca esta mañana")]),
        source="replay",
    )
    report = bot_app.pipeline.process_pending()
    with bot_app.db.session() as session:
        case = session.exec(select(Case)).one()
        message = session.exec(select(Message)).one()
    assert report.needs_human == 1
    assert case.needs_human is True
    assert message.language == "es"


def test_processing_is_resumable_in_batches(bot_app: App) -> None:
    bot_app.pipeline.ingest(
        Batch(messages=[_msg(str(i), f"my bike was stolen {i}") for i in range(7)]), source="replay"
    )
    report = bot_app.pipeline.process_pending(limit=3)
    assert report.processed == 7
    assert bot_app.pipeline.process_pending().processed == 0


def test_changing_a_configured_value_needs_the_wording_approved_again(
    bot_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    _approve_auto_templates(bot_app)
    monkeypatch.setattr(bot_app.settings.account, "support_line", "a different number")
    bot_app.pipeline.ingest(
        Batch(messages=[_msg("1", "fight outside the SU right now")]), source="replay"
    )
    bot_app.pipeline.process_pending()
    with bot_app.db.session() as session:
        ack = session.exec(select(OutboundMessage)).one()
    assert ack.status == OutboxStatus.NEEDS_APPROVAL
