"""Partner agencies: 3x5x2 grading, sharing agreements, and redacted reports emailed to a real
local SMTP server (aiosmtpd). Only what an agreement allows leaves, nothing that identifies
the student does, every send is on the audit log, and a mail server that is down loses
nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlmodel import col, select

from bot.app import App, build
from bot.cli import main
from bot.clock import FixedClock
from bot.config import Settings, load_settings
from bot.crud import audit, users
from bot.db import Database
from bot.errors import ConfigError
from bot.messages import InboundMessage
from bot.models import AuditEntry, Case, MessageAttachment, PartnerSending, SendingStatus
from bot.partners.access import PartnerError
from bot.partners.grading import grade_case, parse_grade
from bot.partners.sending import retry, send_report
from channels.base import Batch
from tests.conftest import NOW, message_line

SENDER = "campus.police@lancashire.police.uk"
LICENSING = "licensing@preston.example.org"
ASB = "asb@preston.example.org"
VICTIMS = "referrals@victimsupport.example.org"
AGENCIES = {
    "licensing": {
        "name": "Preston City Council Licensing",
        "agreement": "Preston Community Safety Partnership protocol, licensed premises",
        "email": LICENSING,
        "scenarios": ["drugs", "violent_crime"],
        "fields": ["scenarios", "reported_at", "summary"],
        "handling": ["P", "C"],
    },
    "asb-team": {
        "name": "Preston City Council Anti-Social Behaviour Team",
        "agreement": "Preston Community Safety Partnership protocol (s.115)",
        "email": ASB,
        "scenarios": ["anti_social_behaviour", "criminal_damage", "drugs"],
        "fields": ["scenarios", "reported_at", "summary", "attachments"],
        "handling": ["P"],
    },
    "victim-support": {
        "name": "Lancashire Victim Services",
        "agreement": "Lancashire Victim Services referral agreement",
        "email": VICTIMS,
        "scenarios": ["theft", "violent_crime"],
        "fields": ["scenarios", "reported_at"],
        "handling": [],
    },
    "wellbeing": {
        "name": "UCLan Student Support and Wellbeing",
        "agreement": "UCLan student welfare agreement",
        "scenarios": ["mental_health"],
        "fields": ["scenarios", "summary"],
    },
}
REPORTER = {"id": "1476290145", "handle": "@jesswhit", "name": "Jess Whitworth"}
# Intelligence about drug dealing, with the reporter's own name in it, every kind of personal
# data the redactor removes, a worry that is not the licensing team's business, and script.
INTELLIGENCE = (
    "Heads up: a man is dealing from flat 4 near PR1 2HE every night, ring him on "
    "07700 900123 or dealer.dan@example.com, his insta is @fylde_dealer. It's Jess "
    "Whitworth, I'm struggling with it all. <script>alert('x')</script>"
)
STUDENT_DETAILS = (
    "Jess",
    "Whitworth",
    "jesswhit",
    "1476290145",
    "fylde_dealer",
    "07700 900123",
    "dealer.dan@example.com",
    "PR1 2HE",
    "<script>",
)
BIKE = "My bike was stolen from the library racks, text me on 07700 900456"
CONDITIONS = "For the licensing review only; not to be disclosed to the premises licence holder"


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps every email it accepts."""

    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    senders: list[str | None] = field(default_factory=list)  # each envelope's MAIL FROM

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), parsed))
        self.senders.append(envelope.mail_from)
        return "250 2.0.0 Accepted"


@contextmanager
def smtp_server(inbox: Inbox, port: int) -> Iterator[None]:
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield
    finally:
        controller.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _config(tmp_path: Path, port: int, **extra: Any) -> Path:
    config = {
        "timezone": "Europe/London",
        "classifier": {"kind": "keywords"},
        "smtp": {
            "from_address": SENDER,
            "host": "127.0.0.1",
            "port": port,
            "security": "plain",
            "timeout_seconds": 5,
        },
        "partners": {"agencies": AGENCIES},
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def port() -> int:
    return _free_port()


@pytest.fixture
def partner_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, port: int) -> Settings:
    import os

    for name in list(os.environ):
        if name.startswith("CAMPUSBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return load_settings(_config(tmp_path, port))


@pytest.fixture
def app(db: Database, partner_settings: Settings) -> App:
    built = build(partner_settings, clock=FixedClock(NOW), db=db)
    with built.db.session() as session:
        for name, roles in [("pc.ashworth", ["officer"]), ("ana", ["analyst"])]:
            users.add(session, username=name, roles=roles, at=NOW, by="admin")
    return built


def _case(app: App, external_id: str, text: str, **overrides: Any) -> str:
    line = message_line(
        external_id, text, author=REPORTER, received_at=(NOW - timedelta(hours=1)).isoformat()
    )
    line.update(overrides)
    app.pipeline.run(Batch(messages=[InboundMessage.model_validate(line)]), source="replay")
    with app.db.session() as session:
        case = session.exec(select(Case).where(Case.conversation_id == f"conv-{external_id}")).one()
        assert case.reference is not None
        return case.reference


def _grade(app: App, reference: str, code: str, conditions: str | None = None) -> None:
    from bot.partners.access import find_case

    source, intelligence, handling = code[0], code[1], code[-1]
    with app.db.session() as session:
        case = find_case(session, reference)
        grade = parse_grade(source, intelligence, handling, conditions)
        grade_case(session, case, grade, by="pc.ashworth", at=NOW)


def _send(app: App, reference: str, agency: str, by: str = "pc.ashworth") -> PartnerSending:
    return send_report(app.db, app.settings, app.clock, reference=reference, agency=agency, by=by)


def _parts(email: EmailMessage) -> tuple[str, str]:
    """The covering text and the attached HTML report, decoded."""
    cover = email.get_body(preferencelist=("plain",))
    assert cover is not None
    (attachment,) = list(email.iter_attachments())
    assert attachment.get_content_type() == "text/html"
    return str(cover.get_content()), str(attachment.get_content())


def _sendings(app: App) -> list[PartnerSending]:
    with app.db.session() as session:
        return list(session.exec(select(PartnerSending).order_by(col(PartnerSending.id))))


def _audit(app: App) -> list[AuditEntry]:
    with app.db.session() as session:
        return [
            e
            for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))
            if e.action.startswith("partner.")
        ]


# -- what leaves ---------------------------------------------------------------------------
def test_graded_intelligence_leaves_redacted_with_only_the_agreed_fields(
    app: App, port: int
) -> None:
    reference = _case(app, "1", INTELLIGENCE)
    _grade(app, reference, "2B P")
    inbox = Inbox()
    with smtp_server(inbox, port):
        sent = _send(app, reference, "licensing")
    assert sent.status == SendingStatus.SENT
    ((recipients, email),) = inbox.received
    assert recipients == [LICENSING]
    assert email["From"] == SENDER and inbox.senders == [SENDER]
    assert email["Subject"] == (
        f"[OFFICIAL-SENSITIVE] UCLan Campus Police: report {reference} for "
        "Preston City Council Licensing"
    )
    cover, report = _parts(email)
    for text in (cover, report, email["Subject"]):
        for detail in STUDENT_DETAILS:
            assert detail not in text, f"{detail!r} left in the report"
    # The redactor's marks show where something was, so the reader knows to ask.
    for mark in ("[name]", "[phone]", "[email]", "[postcode]", "[handle]"):
        assert mark in report
    assert "&lt;script&gt;" in report  # the words arrive, inert
    # Fields the agreement lists, and no others; only the scenarios it covers are named.
    assert "Kind of case" in report and ">drugs<" in report
    assert "mental health" not in report
    assert "Reported to the police" in report and "Sat 21 Nov 2026, 11:00 GMT" in report
    for unlisted in ("Police priority", "Case status", "Reported through", "Photos and videos"):
        assert unlisted not in report
    # The 3x5x2 grading travels with the intelligence, in words as well as codes.
    assert "2 — Untested" in report
    assert "B — Known indirectly to the source but corroborated" in report
    assert "P — Lawful sharing permitted" in report
    assert "Intelligence grading (3x5x2): 2B P" in " ".join(cover.split())
    assert "conditions" not in cover.lower()


def test_handling_code_c_carries_its_conditions_and_limits_who_receives_it(
    app: App, port: int
) -> None:
    reference = _case(app, "1", INTELLIGENCE)
    _grade(app, reference, "1A C", CONDITIONS)
    inbox = Inbox()
    with smtp_server(inbox, port):
        assert _send(app, reference, "licensing").status == SendingStatus.SENT
        with pytest.raises(PartnerError, match=r"graded 1A C; .* allows handling codes P"):
            _send(app, reference, "asb-team")
    ((_, email),) = inbox.received
    cover, report = _parts(email)
    assert "Handling conditions" in report and CONDITIONS in report
    assert "C — Lawful sharing permitted with conditions" in report
    assert f"Handling conditions: {CONDITIONS}" in " ".join(cover.split())
    assert "except as the handling conditions permit" in " ".join(report.split())


def test_ungraded_intelligence_is_not_sent(app: App, port: int) -> None:
    reference = _case(app, "1", INTELLIGENCE)
    inbox = Inbox()
    with smtp_server(inbox, port), pytest.raises(PartnerError, match="not graded; grade it"):
        _send(app, reference, "licensing")
    assert inbox.received == [] and _sendings(app) == []
    (refused,) = _audit(app)
    assert refused.action == "partner.report_refused"
    assert refused.detail["agency"] == "licensing"


def test_an_agency_whose_agreement_does_not_cover_the_scenario_is_refused(
    app: App, port: int
) -> None:
    reference = _case(app, "2", BIKE)  # theft
    inbox = Inbox()
    with smtp_server(inbox, port), pytest.raises(PartnerError, match="covers anti social"):
        _send(app, reference, "asb-team")
    assert inbox.received == [] and _sendings(app) == []
    assert [e.action for e in _audit(app)] == ["partner.report_refused"]


def test_an_incident_report_sends_the_agreed_facts_only(app: App, port: int) -> None:
    reference = _case(app, "2", BIKE)  # not intelligence: no grading needed
    inbox = Inbox()
    with smtp_server(inbox, port):
        sent = _send(app, reference, "victim-support")  # an agency that takes no intelligence
    assert sent.status == SendingStatus.SENT and sent.fields == ["scenarios", "reported_at"]
    ((_, email),) = inbox.received
    cover, report = _parts(email)
    assert "Not intelligence: an incident report" in report
    assert ">theft<" in report
    for absent in ("bike", "library", "07700", "[phone]", "Jess", "3x5x2): "):
        assert absent not in report and absent not in cover


def test_intelligence_never_reaches_an_agency_that_takes_facts_only(app: App) -> None:
    reference = _case(app, "3", "heads up, they keep robbing phones outside the SU bar")
    _grade(app, reference, "2C P")
    with pytest.raises(PartnerError, match=r"allows handling codes none \(facts only"):
        _send(app, reference, "victim-support")


def test_attachments_are_counted_never_attached(app: App, port: int) -> None:
    reference = _case(
        app,
        "4",
        "loud music and rowdy shouting from the party at the end of our street",
        attachments=[
            {"kind": "image", "media_type": "image/jpeg", "size": 1000},
            {"kind": "video", "media_type": "video/mp4", "size": 5000},
        ],
    )
    with app.db.session() as session:
        assert len(session.exec(select(MessageAttachment)).all()) == 2
    inbox = Inbox()
    with smtp_server(inbox, port):
        _send(app, reference, "asb-team")
    ((_, email),) = inbox.received
    assert len(list(email.iter_attachments())) == 1  # the report; no photo, no video
    _, report = _parts(email)
    assert "1 image, 1 video (not attached; ask quoting the reference)" in report


# -- the record ----------------------------------------------------------------------------
def test_every_send_is_audited_with_the_hash_of_what_left(app: App, port: int) -> None:
    reference = _case(app, "1", INTELLIGENCE)
    _grade(app, reference, "2B P")
    with smtp_server(Inbox(), port):
        sent = _send(app, reference, "licensing")
    entries = _audit(app)
    assert [e.action for e in entries] == [
        "partner.intelligence_graded",
        "partner.report_sending",
        "partner.report_sent",
    ]
    sending, done = entries[1], entries[2]
    assert sending.actor == done.actor == "pc.ashworth"
    assert done.entity == "partner_sending" and done.entity_id == str(sent.id)
    assert done.detail["sha256"] == sent.body_sha256 and len(sent.body_sha256) == 64
    assert done.detail["fields"] == ["scenarios", "reported_at", "summary"]
    assert sending.detail["grade"] == "2B P"
    assert sent.body is None  # no second copy of the case once it has gone
    logged = str([e.detail for e in entries])
    for detail in STUDENT_DETAILS:
        assert detail not in logged
    with app.db.session() as session:
        assert audit.verify(session).ok


def test_mail_server_down_records_a_failed_send_that_a_retry_delivers(app: App, port: int) -> None:
    reference = _case(app, "1", INTELLIGENCE)
    _grade(app, reference, "2B C", CONDITIONS)
    failed = _send(app, reference, "licensing")  # nothing listens on the port
    assert failed.status == SendingStatus.FAILED
    assert "cannot use the mail server at 127.0.0.1" in (failed.last_error or "")
    (kept,) = _sendings(app)
    assert kept.body is not None and kept.status == SendingStatus.FAILED
    assert _audit(app)[-1].action == "partner.report_failed"
    assert _audit(app)[-1].detail["error"] == "ConnectionLost"

    with pytest.raises(PartnerError, match="not an active user"):
        retry(app.db, app.settings, app.clock, sending_id=kept.id or 0, by="nobody")
    inbox = Inbox()
    with smtp_server(inbox, port):
        again = retry(app.db, app.settings, app.clock, sending_id=kept.id or 0, by="pc.ashworth")
        with pytest.raises(PartnerError, match="is sent; only a failed one"):
            retry(app.db, app.settings, app.clock, sending_id=kept.id or 0, by="pc.ashworth")
    assert again.status == SendingStatus.SENT and again.attempts == 2
    ((recipients, email),) = inbox.received
    assert recipients == [LICENSING]
    assert email["Message-ID"] == kept.message_id  # the very email first composed
    assert CONDITIONS in _parts(email)[1]
    assert [e.action for e in _audit(app)][-2:] == [
        "partner.report_sending",
        "partner.report_sent",
    ]


def test_only_officers_share(app: App) -> None:
    reference = _case(app, "1", INTELLIGENCE)
    with pytest.raises(PartnerError, match="need the officer or admin role; ana has analyst"):
        _grade_as(app, reference, "ana")
    with pytest.raises(PartnerError, match="need the officer or admin role"):
        _send(app, reference, "licensing", by="ana")


def _grade_as(app: App, reference: str, by: str) -> None:
    from bot.partners.access import find_case

    with app.db.session() as session:
        grade_case(
            session, find_case(session, reference), parse_grade("1", "A", "P"), by=by, at=NOW
        )


def test_no_address_or_no_mail_server_is_a_clear_error(app: App, tmp_path: Path, port: int) -> None:
    reference = _case(app, "5", "I'm really struggling and can't cope with my anxiety")
    with pytest.raises(PartnerError, match=r"set partners\.agencies\.wellbeing\.email"):
        _send(app, reference, "wellbeing")
    with pytest.raises(
        PartnerError, match="no partner agency 'council'; known: asb-team, licensing"
    ):
        _send(app, reference, "council")
    bare = load_settings(_config(tmp_path, port, smtp={}))
    with pytest.raises(
        ConfigError,
        match=r"under smtp; set smtp\.host, partners\.from_address \(or smtp\.from_address\)$",
    ):
        send_report(app.db, bare, app.clock, reference=reference, agency="wellbeing", by="x")


def test_partners_from_address_overrides_the_mail_servers_sender(
    app: App, tmp_path: Path, port: int
) -> None:
    own = "partnerships.campus@lancashire.police.uk"
    settings = app.settings.model_copy(
        update={"partners": app.settings.partners.model_copy(update={"from_address": own})}
    )
    reference = _case(app, "1", INTELLIGENCE)
    _grade(app, reference, "2B P")
    inbox = Inbox()
    with smtp_server(inbox, port):
        sent = send_report(
            app.db, settings, app.clock, reference=reference, agency="licensing", by="pc.ashworth"
        )
    assert sent.status == SendingStatus.SENT
    ((_, email),) = inbox.received
    assert email["From"] == own and inbox.senders == [own]  # bounces come back to it too
    without_server = load_settings(
        _config(
            tmp_path,
            port,
            smtp={"port": port},
            partners={"from_address": own, "agencies": AGENCIES},
        )
    )
    with pytest.raises(ConfigError, match=r"set smtp\.host$"):
        send_report(
            app.db, without_server, app.clock, reference=reference, agency="licensing", by="x"
        )


@pytest.mark.parametrize(
    ("source", "intelligence", "handling", "conditions", "message"),
    [
        ("B", "2", "P", None, "look like 5x5x5 codes"),
        ("4", "A", "P", None, "source evaluation is one of 1 reliable; 2 untested; 3 not"),
        ("1", "F", "P", None, "E suspected to be false"),
        ("1", "A", "X", None, "handling code is one of P lawful sharing permitted"),
        ("1", "A", "C", "  ", "handling code C needs its conditions written down"),
        ("1", "A", "P", "only for X", "conditions go with handling code C"),
    ],
)
def test_gradings_use_the_real_3x5x2_codes(
    source: str, intelligence: str, handling: str, conditions: str | None, message: str
) -> None:
    with pytest.raises(PartnerError, match=message):
        parse_grade(source, intelligence, handling, conditions)


def test_agreements_are_checked_when_the_config_loads(tmp_path: Path, port: int) -> None:
    broken = {"licensing": {**AGENCIES["licensing"], "scenarios": ["drink_driving"]}}
    with pytest.raises(ConfigError, match="unknown scenarios"):
        load_settings(_config(tmp_path, port, partners={"agencies": broken}))
    broken = {"licensing": {**AGENCIES["licensing"], "fields": ["author_name"]}}
    with pytest.raises(ConfigError, match=r"partners\.agencies\.licensing\.fields"):
        load_settings(_config(tmp_path, port, partners={"agencies": broken}))


# -- the command line ----------------------------------------------------------------------
@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, port: int) -> Path:
    """A working folder with SQLite, an officer and one intelligence case, as after intake."""
    import os

    for name in list(os.environ):
        if name.startswith("CAMPUSBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, port, database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert main(["--config", str(config), "users", "add", "pc.ashworth", "--role", "officer"]) == 0
    settings = load_settings(config)
    app = build(settings, clock=FixedClock(NOW))
    try:
        _case(app, "1", INTELLIGENCE)
    finally:
        app.close()
    return config


REFERENCE = "UCC-2026-000001"


def test_cli_grade_then_dry_run_shows_exactly_what_would_leave_and_sends_nothing(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(cli), "partners"]
    assert main([*base, "send", REFERENCE, "--agency", "licensing", "--by", "pc.ashworth"]) == 1
    assert "not graded; grade it first" in capsys.readouterr().err
    grade = ["--source", "2", "--intelligence", "B", "--handling", "C"]
    assert main([*base, "grade", REFERENCE, *grade, "--by", "pc.ashworth"]) == 1
    assert "needs its conditions written down" in capsys.readouterr().err
    assert (
        main([*base, "grade", REFERENCE, *grade, "--conditions", CONDITIONS, "--by", "pc.ashworth"])
        == 0
    )
    assert "graded 2B C: source untested" in capsys.readouterr().out
    dry = [*base, "send", REFERENCE, "--agency", "licensing", "--by", "pc.ashworth", "--dry-run"]
    assert main(dry) == 0
    shown = capsys.readouterr().out
    assert "DRY RUN: nothing sent" in shown
    assert f"To: {LICENSING}" in shown and "Content-Type: text/html" not in shown
    assert "2 — Untested" in shown and CONDITIONS in shown and "[phone]" in shown
    for detail in STUDENT_DETAILS:
        assert detail not in shown
    assert main([*base, "sendings"]) == 0
    assert "licensing" not in capsys.readouterr().out  # nothing was recorded


def test_cli_send_failure_says_how_to_retry_and_pdf_is_explained(
    cli: Path, capsys: pytest.CaptureFixture[str], port: int
) -> None:
    base = ["--config", str(cli), "partners"]
    grade = ["--source", "1", "--intelligence", "A", "--handling", "P"]
    assert main([*base, "grade", REFERENCE, *grade, "--by", "pc.ashworth"]) == 0
    send = [*base, "send", REFERENCE, "--agency", "licensing", "--by", "pc.ashworth"]
    assert main([*send, "--format", "pdf"]) == 1
    assert "PDF is not available" in capsys.readouterr().err
    assert main(send) == 1  # no mail server yet
    err = capsys.readouterr().err
    assert "NOT SENT" in err and "partners retry 1 --by pc.ashworth" in err
    inbox = Inbox()
    with smtp_server(inbox, port):
        assert main([*base, "retry", "1", "--by", "pc.ashworth"]) == 0
    assert f"sent {REFERENCE} to licensing ({LICENSING})" in capsys.readouterr().out
    assert len(inbox.received) == 1
    assert main([*base, "list"]) == 0
    listing = capsys.readouterr().out
    assert "victim-support: Lancashire Victim Services <referrals@" in listing
    assert "handling codes: none (facts only, never intelligence)" in listing
    assert "wellbeing: UCLan Student Support and Wellbeing <address NOT SET>" in listing
