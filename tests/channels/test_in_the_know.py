"""In The Know: the alert feed and members' email replies, from recorded files."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from bot.config import InTheKnowSettings
from channels.in_the_know import html_to_text, parse_email, parse_feed
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


def test_html_only_reply_reads_as_text_without_the_quoted_alert() -> None:
    [message] = parse_email((ITK / "reply_html_only.eml").read_bytes()).messages
    assert message.text.startswith("Hi,\n\nMy bike was taken from the racks on Adelphi Street")
    assert "£380" in message.text and "I've reported it" in message.text  # entities decoded
    assert "<div" not in message.text and "&pound;" not in message.text
    assert "six bikes were stolen" not in message.text and "wrote:" not in message.text
    assert message.text.endswith("Thanks,\nPriya")


def test_windows_1252_8bit_reply_keeps_its_curly_quotes_and_drops_the_outlook_quote() -> None:
    [message] = parse_email((ITK / "reply_windows_1252.eml").read_bytes()).messages
    assert "flatmate’s car" in message.text and "“every single night”" in message.text
    assert "£40" in message.text
    assert "Original Message" not in message.text and "Lancashire Talking is" not in message.text
    assert message.author.name == "Zoë Ashworth"
    assert message.conversation_id == "<ITK.487601.20261120113000@intheknow.example.com>"


def test_iphone_reply_keeps_the_video_and_only_the_text_above_the_quote() -> None:
    [message] = parse_email((ITK / "reply_iphone_video.eml").read_bytes()).messages
    assert message.text.endswith("Door staff said they’d keep an eye out.\n\nKieran")
    assert "Sent from my iPhone" not in message.text
    [video] = message.attachments  # the text after the video is not an attachment
    mov = (ITK / "reply_iphone_video.attachment.mov").read_bytes()
    assert (video.kind, video.media_type, video.size, video.sha256) == (
        "video",
        "video/quicktime",
        len(mov),
        hashlib.sha256(mov).hexdigest(),
    )


def test_a_reply_whose_from_header_was_mangled_is_a_dead_letter_with_every_byte() -> None:
    raw = (ITK / "malformed_from_header_lost.eml").read_bytes()
    batch = parse_email(raw, origin="imap:INBOX:1795624844:7")
    assert batch.messages == []
    [letter] = batch.failures
    assert letter.raw == raw and letter.origin == "imap:INBOX:1795624844:7"
    assert "no sender address" in letter.reason


def test_sloppy_headers_still_give_a_message() -> None:
    """No Message-ID, an impossible Date, an unknown charset: the reply is still taken in."""
    raw = (
        b"From: Jo Bloggs <jo.bloggs@example.com>\r\n"
        b"Date: Mon, 99 Foo 2026 25:61:00\r\n"
        b"Subject: Re: Lancashire Talking\r\n"
        b"Content-Type: text/plain; charset=x-unknown-8bit\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        b"The survey link is broken on my phone caf\xc3\xa9 wifi\r\n"
    )
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    [message] = parse_email(raw, now=now).messages
    assert message.external_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert message.conversation_id == message.external_id  # no thread headers: its own
    assert message.received_at == now
    assert "café wifi" in message.text
    assert parse_email(raw, now=now).messages[0].external_id == message.external_id


def test_bounces_are_automatic_and_a_deeper_thread_stays_with_its_alert() -> None:
    bounce = (
        b"From: Mail Delivery System <MAILER-DAEMON@mx1.intheknow.example.com>\r\n"
        b"Message-ID: <20261121.bounce@mx1.intheknow.example.com>\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b1\r\n\r\n"
        b"--b1\r\nContent-Type: text/plain\r\n\r\nDelivery failed\r\n--b1--\r\n"
    )
    assert parse_email(bounce) == parse_email(b"Auto-Submitted: auto-replied\r\n\r\nx")
    assert parse_email(bounce).messages == [] and parse_email(bounce).failures == []
    follow_up = (
        b"From: Sam Whitfield <samwhitfield97@example.com>\r\n"
        b"Message-ID: <second@mail.example.com>\r\n"
        b"In-Reply-To: <officer-answer@intheknow.example.com>\r\n"
        b"References: <ITK.487213.20261116091500@intheknow.example.com>\r\n"
        b" <officer-answer@intheknow.example.com>\r\n\r\n"
        b"Yes I can come in on Thursday.\r\n"
    )
    [message] = parse_email(follow_up).messages
    assert message.conversation_id == "<ITK.487213.20261116091500@intheknow.example.com>"
    assert message.in_reply_to == "<officer-answer@intheknow.example.com>"


def test_html_to_text_drops_quotes_hidden_parts_and_outlook_originals() -> None:
    html = (
        "<html><head><style>p{color:red}</style><title>x</title></head><body>"
        "<p>Saw it again<br>tonight &amp; filmed it</p><div><br></div><div>Kieran</div>"
        '<div class="gmail_quote"><div>On Mon wrote:</div><blockquote><p>old</p></blockquote>'
        '</div><blockquote type="cite"><blockquote><p>older</p></blockquote>still quoted'
        '</blockquote><hr><div id="divRplyFwdMsg"><b>From:</b> In The Know</div><p>alert</p>'
        "</body></html>"
    )
    assert html_to_text(html) == "Saw it again\ntonight & filmed it\n\nKieran"


def test_settings_refuse_plain_imap_off_this_machine_and_short_contract_keys(
    tmp_path: Path,
) -> None:
    assert InTheKnowSettings(imap_security="plain", imap_host="127.0.0.1").imap_port_number == 143
    assert InTheKnowSettings(imap_security="plain", imap_host="::1").imap_host == "::1"
    assert InTheKnowSettings(imap_host="imap.example.com").imap_port_number == 993
    with pytest.raises(ValidationError, match="unencrypted"):
        InTheKnowSettings(imap_security="plain", imap_host="imap.example.com")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        InTheKnowSettings(contract_key=SecretStr("too-short"))
    with pytest.raises(ValidationError, match="no such file"):
        InTheKnowSettings(imap_ca_file=tmp_path / "missing.pem")
