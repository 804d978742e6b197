"""In The Know replies read from a real IMAP server: a private Dovecot per test.

The emails are delivered into the server's maildir as a delivery agent would; the adapter
reads them over IMAP (plain on loopback, STARTTLS or IMAPS) and the real pipeline stores
them in SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

import channels.in_the_know as itk
from bot.app import App, build
from bot.cli import main
from bot.clock import FixedClock
from bot.config import Settings, SmtpSettings
from bot.db import Database
from bot.errors import AuthError, PermanentError, TransientError
from bot.ingest import retry_dead_letters
from bot.models import Case, DeadLetter, Message, MessageAttachment
from bot.polling import load_cursor, poll_once
from channels.base import Health
from channels.in_the_know import InTheKnowChannel
from schedules.worker import jobs
from tests.channels.dovecot import PASSWORD, Dovecot, _free_port, running_dovecot
from tests.conftest import FIXTURES

ITK = FIXTURES / "in_the_know"
REPLIES = {  # fixture -> the Message-ID it is stored under
    "reply_plain.eml": "<CAF9xk2Tq7wPZ1mN4vR8sJd0hYbE3uLcG5aQeXo6tWfK+p2Vn_g@mail.example.com>",
    "reply_html_only.eml": "<1842769305.4417723.1795468032871@mail.example.com>",
    "reply_html_with_photo.eml": (
        "<DB9PR01MB7354A3C6F2E19B8D4E5FDB9PR01MB7354@DB9PR01MB7354.eurprd01.prod.example.com>"
    ),
    "reply_iphone_video.eml": "<5B3A9C1E-7F2D-4E8A-B6C0-9D1E2F3A4B5C@example.ac.uk>",
    "reply_windows_1252.eml": "<1712408934.20261120190231@example.com>",
    "reply_non_utf8.eml": "<7c1e5a2b-93f0-4d8e-b6a1-2f4c9d0e8b17@example.com>",
}
AUTOMATIC = "reply_auto_reply.eml"
# Replies go out through it; status only checks that it is configured (never called here).
MAIL_SERVER = SmtpSettings(host="127.0.0.1", from_address="campus.police@lancashire.police.uk")
MALFORMED = "malformed_from_header_lost.eml"


def raw(name: str) -> bytes:
    return (ITK / name).read_bytes()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def itk_app(
    db: Database, settings: Settings, clock: FixedClock, server: Dovecot, **itk: Any
) -> App:
    """The bot as deployed, its In The Know channel reading ``server``'s mailbox."""
    return build(
        settings.model_copy(update={"in_the_know": server.settings(**itk)}), clock=clock, db=db
    )


def poll(app: App) -> tuple[int, int, int]:
    report = poll_once(app, "in_the_know", app.channels()["in_the_know"]).ingested
    return report.stored, report.duplicates, report.dead_lettered


def stored(app: App) -> dict[str, Message]:
    with app.db.session() as session:
        return {m.external_id: m for m in session.exec(select(Message)).all()}


def unseen(flags: dict[int, str]) -> list[int]:
    return sorted(uid for uid, f in flags.items() if "\\Seen" not in f)


def test_each_reply_lands_once_tagged_and_a_second_round_stores_nothing(
    db: Database, settings: Settings, clock: FixedClock, dovecot: Dovecot
) -> None:
    first = [n for n in REPLIES if n != "reply_non_utf8.eml"] + [AUTOMATIC, MALFORMED]
    for name in first:
        dovecot.deliver(raw(name))
    app = itk_app(db, settings, clock, server=dovecot)
    assert poll(app) == (5, 0, 1)  # the out-of-office reply is read and skipped
    assert poll(app) == (0, 0, 0)
    dovecot.deliver(raw("reply_non_utf8.eml"))
    dovecot.deliver(raw("reply_plain.eml"))  # the member's server delivered it twice
    assert poll(app) == (1, 1, 0)
    assert app.pipeline.process_pending().processed == 6

    messages = stored(app)
    assert sorted(messages) == sorted(REPLIES.values())
    for message in messages.values():
        assert message.channel == "in_the_know" and message.private
        assert message.case_id is not None and message.state == "processed"
        assert "wrote:" not in message.text and "\n>" not in message.text
        assert message.conversation_id.startswith("<ITK.")
    zoe = messages[REPLIES["reply_windows_1252.eml"]]
    assert "anti_social_behaviour" in zoe.scenarios and "“every single night”" in zoe.text
    with app.db.session() as session:
        files = {
            (a.kind, a.media_type, a.size, a.sha256)
            for a in session.exec(select(MessageAttachment)).all()
        }
        [letter] = session.exec(select(DeadLetter)).all()
        cases = session.exec(select(Case)).all()
    expected = {
        (kind, media, len(data), hashlib.sha256(data).hexdigest())
        for kind, media, data in (
            ("image", "image/jpeg", raw("reply_html_with_photo.attachment.jpg")),
            ("video", "video/quicktime", raw("reply_iphone_video.attachment.mov")),
        )
    }
    assert files == expected
    assert letter.raw == raw(MALFORMED) and letter.times_seen == 1
    assert letter.source == "in_the_know:poll" and "no sender address" in letter.reason
    assert letter.origin is not None and letter.origin.startswith("imap:INBOX:")
    assert len(cases) == 6  # one per member and alert
    assert retry_dead_letters(app).still_failing == 1  # retried through the email parser


def test_emails_are_flagged_only_once_they_are_stored(
    db: Database,
    settings: Settings,
    clock: FixedClock,
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("reply_plain.eml", "reply_html_only.eml", MALFORMED):
        dovecot.deliver(raw(name))
    app = itk_app(db, settings, clock, server=dovecot)

    def database_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT INTO messages", {}, Exception("database is locked"))

    with monkeypatch.context() as patched:
        patched.setattr(app.pipeline, "ingest", database_down)
        with pytest.raises(OperationalError):
            poll(app)
    assert unseen(dovecot.flags()) == [1, 2, 3]  # read, not stored: untouched
    with app.db.session() as session:
        assert load_cursor(session, "in_the_know") is None

    assert poll(app) == (2, 0, 1)  # the same emails again, now stored
    assert unseen(dovecot.flags()) == [1, 2, 3]  # stored; the cursor is saved after commit
    assert poll(app) == (0, 0, 0)
    assert unseen(dovecot.flags()) == []  # the round after the commit flags them
    with app.db.session() as session:
        assert (load_cursor(session, "in_the_know") or "").endswith(":3")


def test_stored_emails_move_to_the_processed_folder_and_none_is_deleted(
    db: Database, settings: Settings, clock: FixedClock, dovecot: Dovecot
) -> None:
    names = [*REPLIES, AUTOMATIC, MALFORMED]
    for name in names:
        dovecot.deliver(raw(name))
    app = itk_app(db, settings, clock, server=dovecot, imap_processed_mailbox="ITK done")
    assert poll(app) == (6, 0, 1)
    assert len(dovecot.flags()) == 8  # nothing moves before it is stored
    assert poll(app) == (0, 0, 0)
    assert dovecot.flags() == {}
    assert len(dovecot.flags("ITK done")) == len(names)  # skipped and broken ones kept too
    dovecot.deliver(raw("reply_plain.eml").replace(b"Message-ID: <CAF9", b"Message-ID: <NEW9"))
    assert poll(app) == (1, 0, 0)  # UIDs go on after the move: the cursor still holds


def test_a_processed_folder_the_server_refuses_is_logged_and_reading_goes_on(
    db: Database,
    settings: Settings,
    clock: FixedClock,
    dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dovecot.deliver(raw("reply_plain.eml"))
    app = itk_app(db, settings, clock, server=dovecot, imap_processed_mailbox="Done/Replies")
    assert poll(app) == (1, 0, 0)
    dovecot.deliver(raw("reply_html_only.eml"))
    with caplog.at_level(logging.WARNING, logger="channels.in_the_know"):
        assert poll(app) == (1, 0, 0)
    assert "could not be flagged or moved: [CANNOT] Invalid mailbox name" in caplog.text
    assert unseen(dovecot.flags()) == [1, 2]  # left as they were, nothing lost


def test_a_recreated_folder_is_read_again_without_storing_anything_twice(
    db: Database, settings: Settings, clock: FixedClock, dovecot: Dovecot
) -> None:
    folder = "In The Know"
    for name in ("reply_plain.eml", "reply_html_only.eml", "reply_iphone_video.eml"):
        dovecot.deliver(raw(name), folder=folder)
    app = itk_app(db, settings, clock, server=dovecot, mailbox=folder)
    assert poll(app) == (3, 0, 0)
    with app.db.session() as session:
        before = load_cursor(session, "in_the_know")
    with dovecot.client() as imap:  # someone rebuilt the folder: every UID is new
        assert imap.delete(f'"{folder}"')[0] == "OK"
        assert imap.create(f'"{folder}"')[0] == "OK"
        for name in ("reply_iphone_video.eml", "reply_plain.eml", "reply_windows_1252.eml"):
            assert imap.append(f'"{folder}"', "", None, raw(name))[0] == "OK"
        assert imap.append(f'"{folder}"', "", None, raw("reply_html_only.eml"))[0] == "OK"
    assert poll(app) == (1, 3, 0)
    with app.db.session() as session:
        after = load_cursor(session, "in_the_know")
    assert before is not None and after is not None
    assert before.split(":")[0] != after.split(":")[0] and after.endswith(":4")
    assert len(stored(app)) == 4


def test_a_backlog_is_read_in_rounds_oldest_first(
    db: Database,
    settings: Settings,
    clock: FixedClock,
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(itk, "IMAP_BATCH", 2)
    for name in REPLIES:
        dovecot.deliver(raw(name))
    app = itk_app(db, settings, clock, server=dovecot)
    channel = app.channels()["in_the_know"]
    rounds = []
    while True:
        report = poll_once(app, "in_the_know", channel)
        rounds.append(report.ingested.stored)
        if report.complete:
            break
    assert rounds == [2, 2, 2]
    assert len(stored(app)) == 6


def test_an_email_the_server_cannot_read_holds_the_round_and_loses_nothing(
    db: Database, settings: Settings, clock: FixedClock, dovecot: Dovecot
) -> None:
    dovecot.deliver(raw("reply_plain.eml"))
    broken = dovecot.deliver(raw("reply_html_only.eml"))
    app = itk_app(db, settings, clock, server=dovecot)
    broken.chmod(0)  # e.g. restored from a backup with the wrong owner
    with pytest.raises(TransientError, match="mailbox connection lost"):
        poll(app)
    dovecot.locate(broken).chmod(0o600)
    assert stored(app) == {} and unseen(dovecot.flags()) == [1, 2]
    assert poll(app) == (2, 0, 0)


@pytest.mark.parametrize("security", ["plain", "starttls", "tls"])
def test_plain_on_loopback_starttls_and_imaps_all_read_the_mailbox(
    dovecot: Dovecot, security: str
) -> None:
    dovecot.deliver(raw("reply_plain.eml"))
    channel = InTheKnowChannel(dovecot.settings(security), smtp=MAIL_SERVER)
    status = channel.check()
    assert (status.health, status.detail) == (Health.OK, "INBOX: 1 emails")
    [message] = channel.fetch(None).messages
    assert message.external_id == REPLIES["reply_plain.eml"]
    logins = [line for line in dovecot.log.read_text().splitlines() if "Login: user=" in line]
    assert len(logins) == 2
    assert all((", TLS," in line) == (security != "plain") for line in logins)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_an_untrusted_certificate_is_refused_with_a_clear_reason(
    dovecot: Dovecot, security: str
) -> None:
    channel = InTheKnowChannel(dovecot.settings(security, imap_ca_file=None))
    with pytest.raises(PermanentError, match=r"certificate was not accepted.*imap_ca_file"):
        channel.fetch(None)
    assert channel.check().health == Health.DEGRADED


def test_a_refused_password_needs_reauthorisation(dovecot: Dovecot) -> None:
    channel = InTheKnowChannel(dovecot.settings(imap_password="not-the-password"))
    with pytest.raises(AuthError, match="refused the login for itk-replies"):
        channel.fetch("1795624844:7")
    status = channel.check()
    assert status.health == Health.NEEDS_AUTH
    assert "not-the-password" not in status.detail and PASSWORD not in status.detail


def test_unreachable_server_is_transient_and_a_missing_folder_is_not(dovecot: Dovecot) -> None:
    with pytest.raises(TransientError, match="unreachable"):
        InTheKnowChannel(dovecot.settings(imap_port=_free_port())).fetch(None)
    with pytest.raises(PermanentError, match="'Replies' cannot be opened"):
        InTheKnowChannel(dovecot.settings(mailbox="Replies")).fetch(None)


def test_an_email_too_large_to_take_in_is_a_dead_letter_of_its_header(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(itk, "MAX_EMAIL_BYTES", 4000)
    photo = raw("reply_html_with_photo.eml")
    assert len(photo) > 4000
    dovecot.deliver(raw("reply_plain.eml"))
    dovecot.deliver(photo)
    batch = InTheKnowChannel(dovecot.settings()).fetch(None)
    assert [m.external_id for m in batch.messages] == [REPLIES["reply_plain.eml"]]
    [letter] = batch.failures
    assert f"email of {len(photo)} bytes is over the 4000 byte limit" in letter.reason
    assert letter.raw == photo[: photo.index(b"\r\n\r\n") + 4]  # the whole header, exactly
    assert len(dovecot.flags()) == 2  # and the email is still on the server


def test_without_move_on_the_server_stored_emails_are_flagged_instead(
    db: Database,
    settings: Settings,
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    no_move = "imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE UIDPLUS\n"
    with running_dovecot(no_move) as server:
        server.deliver(raw("reply_plain.eml"))
        app = itk_app(db, settings, clock, server=server, imap_processed_mailbox="Done")
        assert poll(app) == (1, 0, 0)
        with caplog.at_level(logging.WARNING, logger="channels.in_the_know"):
            assert poll(app) == (0, 0, 0)
        assert unseen(server.flags()) == []
    assert "cannot MOVE" in caplog.text


def test_the_worker_polls_the_mailbox_on_the_channel_interval(
    db: Database,
    settings: Settings,
    clock: FixedClock,
    dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dovecot.deliver(raw("reply_iphone_video.eml"))
    app = itk_app(db, settings, clock, server=dovecot, poll_interval_seconds=300)
    job, seconds = jobs(app)["poll_in_the_know"]
    assert seconds == 300
    job()
    assert list(stored(app)) == [REPLIES["reply_iphone_video.eml"]]

    broken = itk_app(db, settings, clock, server=dovecot, mailbox="Gone")
    with caplog.at_level(logging.ERROR, logger="schedules.worker"):
        assert jobs(broken)["poll_in_the_know"][0]() is None  # logged, the worker goes on
    assert "cannot be polled until its settings are fixed" in caplog.text


def test_operator_polls_and_checks_the_mailbox_from_the_command_line(
    settings: Settings,
    dovecot: Dovecot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "classifier:\n  kind: keywords\n"
        "in_the_know:\n  enabled: true\n"
        "  feed_url: https://www.intheknow.example.com/rss/alerts\n"
        f"  imap_host: 127.0.0.1\n  imap_security: starttls\n  imap_port: {dovecot.imap_port}\n"
        f"  imap_ca_file: {dovecot.cert}\n  imap_user: itk-replies\n"
    )
    monkeypatch.setenv("CAMPUSBOT_IN_THE_KNOW__IMAP_PASSWORD", PASSWORD)
    for name in ("reply_plain.eml", "reply_windows_1252.eml", MALFORMED):
        dovecot.deliver(raw(name))
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "poll", "in_the_know"]) == 0
    assert "in_the_know: stored 2, duplicates 0, dead-lettered 1; processed 2" in (
        capsys.readouterr().out
    )
    assert main(["--config", str(config), "poll", "in_the_know"]) == 0
    assert "stored 0, duplicates 0, dead-lettered 0" in capsys.readouterr().out
    assert main(["--config", str(config), "channels", "status"]) == 1
    assert (
        "in_the_know: degraded INBOX: 3 emails; replies cannot be emailed until you set "
        "smtp.host, smtp.from_address"
    ) in " ".join(capsys.readouterr().out.split())
    with config.open("a") as more:
        more.write("smtp:\n  host: 127.0.0.1\n  from_address: campus.police@lancashire.police.uk\n")
    assert main(["--config", str(config), "channels", "status"]) == 0
    assert "in_the_know: ok INBOX: 3 emails" in capsys.readouterr().out
    monkeypatch.setenv("CAMPUSBOT_IN_THE_KNOW__IMAP_PASSWORD", "a-wrong-password")
    assert main(["--config", str(config), "channels", "status"]) == 1
    assert "in_the_know: needs_auth" in capsys.readouterr().out
