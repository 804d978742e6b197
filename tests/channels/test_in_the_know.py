"""In The Know: the alert feed and members' email replies, from recorded files."""

from __future__ import annotations

import hashlib

from channels.in_the_know import parse_email, parse_feed
from tests.conftest import FIXTURES

ITK = FIXTURES / "in_the_know"


def test_feed_alerts_are_read_and_a_malformed_feed_says_so() -> None:
    alerts, warning = parse_feed((ITK / "alerts_feed.xml").read_bytes())
    assert warning is None
    assert len(alerts) == 4
    assert all(a.title and a.guid for a in alerts)
    assert all("<" not in a.summary for a in alerts)
    partial, problem = parse_feed((ITK / "alerts_feed_malformed.xml").read_bytes())
    assert problem is not None
    assert len(partial) <= 4


def test_plain_reply_keeps_the_answer_without_quote_or_signature() -> None:
    [message] = parse_email((ITK / "reply_plain.eml").read_bytes()).messages
    assert message.channel == "in_the_know" and message.private
    assert "bolt cutters" in message.text
    assert "wrote:" not in message.text and "Sport Science" not in message.text
    assert message.conversation_id.startswith("<ITK.")
    assert message.author.id == "samwhitfield97@example.com"


def test_outlook_reply_with_a_photo_keeps_the_photo_and_drops_the_quoted_alert() -> None:
    raw = (ITK / "reply_html_with_photo.eml").read_bytes()
    [message] = parse_email(raw).messages
    assert "receipt" in message.text
    assert "Sent:" not in message.text
    [photo] = message.attachments
    jpeg = (ITK / "reply_html_with_photo.attachment.jpg").read_bytes()
    assert (photo.kind, photo.size, photo.sha256) == (
        "image",
        len(jpeg),
        hashlib.sha256(jpeg).hexdigest(),
    )


def test_latin1_reply_is_decoded_and_auto_replies_are_skipped() -> None:
    [message] = parse_email((ITK / "reply_non_utf8.eml").read_bytes()).messages
    assert "£450" in message.text and "café" in message.text
    assert parse_email((ITK / "reply_auto_reply.eml").read_bytes()).messages == []


def test_broken_email_is_a_dead_letter_not_a_crash() -> None:
    batch = parse_email(b"this is not an email at all")
    assert batch.messages == []
    assert "email not understood" in batch.failures[0].reason
    assert batch.failures[0].raw == b"this is not an email at all"
