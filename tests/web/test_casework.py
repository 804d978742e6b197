"""The casework service, as an API would call it, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot import casework
from bot.app import App
from bot.crud import audit
from bot.models import (
    AuditEntry,
    Case,
    CaseStatus,
    Correction,
    Message,
    OutboundMessage,
    OutboxStatus,
    ReplyKind,
)
from bot.retention import delete_messages
from classifiers.dataset import parse_example
from tests.web.support import Seeded


def test_priority_and_tags_come_from_triage(console: App, seeded: Seeded) -> None:
    with console.db.session() as session:
        risk = casework.get_case(session, seeded.risk_case)
        urgent = casework.get_case(session, seeded.urgent_case)
        theft = casework.get_case(session, seeded.theft_case)
        assert (risk.priority, risk.risk) == ("P1", True)
        assert (urgent.priority, urgent.urgent) == ("P2", True)
        assert theft.scenarios == ["theft"]
        conversation = casework.messages_of(session, seeded.theft_case)
    assert [m.text[:12] for m in conversation] == ["my bike got ", "it was a blu"]


def test_assign_to_self_and_to_a_colleague_is_audited(console: App, seeded: Seeded) -> None:
    at = console.clock.now()
    with console.db.session() as session:
        case = casework.assign(session, seeded.theft_case, to="pc.jones", by="pc.jones", at=at)
        assert (case.assignee, case.status) == ("pc.jones", CaseStatus.ASSIGNED)
        case = casework.assign(session, seeded.theft_case, to="pc.khan", by="pc.jones", at=at)
        assert case.assignee == "pc.khan"
    with console.db.session() as session:
        entries = session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "case.assigned")
            .order_by(col(AuditEntry.id))
        ).all()
    assert [(e.actor, e.detail["assignee"], e.detail["was"]) for e in entries] == [
        ("pc.jones", "pc.jones", None),
        ("pc.jones", "pc.khan", "pc.jones"),
    ]


@pytest.mark.parametrize(
    ("by", "to", "message"),
    [
        ("cara.comms", "pc.jones", "cara.comms is not an officer"),
        ("ana.lyst", "ana.lyst", "ana.lyst is not an officer"),
        ("pc.jones", "cara.comms", "cara.comms is not an officer"),
        ("pc.jones", "nobody", "nobody is not an active user"),
    ],
)
def test_only_officers_do_casework_or_take_cases(
    console: App, seeded: Seeded, by: str, to: str, message: str
) -> None:
    with console.db.session() as session, pytest.raises(casework.CaseworkError, match=message):
        casework.assign(session, seeded.theft_case, to=to, by=by, at=console.clock.now())


def test_reply_queues_a_human_reply_to_the_latest_message(console: App, seeded: Seeded) -> None:
    with console.db.session() as session:
        text = casework.render_canned(
            "report_online",
            case=casework.get_case(session, seeded.theft_case),
            officer="PC Jones",
            account=console.settings.account,
        )
        outbound = casework.reply(
            session,
            seeded.theft_case,
            text=text,
            template="report_online",
            by="pc.jones",
            at=console.clock.now(),
        )
        outbound_id = outbound.id
    with console.db.session() as session:
        row = session.get(OutboundMessage, outbound_id)
        case = session.get(Case, seeded.theft_case)
        assert row is not None and case is not None
        assert row.kind == ReplyKind.HUMAN and row.created_by == "pc.jones"
        assert row.status == OutboxStatus.QUEUED and row.private
        assert row.in_reply_to_message_id == seeded.theft_messages[1]  # the latest
        assert row.template == "replies/canned/report_online.txt.j2"
        assert case.reference is not None and case.reference in row.text
        assert "PC Jones" in row.text and "{{" not in row.text
        assert (case.status, case.assignee) == (CaseStatus.AWAITING_REPLY, "pc.jones")
        logged = session.exec(select(AuditEntry).where(AuditEntry.action == "case.replied")).one()
        assert text not in json.dumps(logged.detail)  # ids and states only, never words
        assert logged.detail["template"] == "report_online"


def test_a_reply_is_refused_when_empty_too_long_or_the_case_is_closed(
    console: App, seeded: Seeded
) -> None:
    at = console.clock.now()
    with console.db.session() as session:
        with pytest.raises(casework.CaseworkError, match="empty"):
            casework.reply(session, seeded.theft_case, text="   ", by="pc.jones", at=at)
        with pytest.raises(casework.CaseworkError, match="2000"):
            casework.reply(session, seeded.theft_case, text="x" * 2001, by="pc.jones", at=at)
        with pytest.raises(casework.CaseworkError, match="no canned response"):
            casework.reply(
                session, seeded.theft_case, text="hi", template="../x", by="pc.jones", at=at
            )
        casework.close(session, seeded.theft_case, by="pc.jones", at=at)
    with console.db.session() as session, pytest.raises(casework.CaseworkError, match="closed"):
        casework.reply(session, seeded.theft_case, text="hello", by="pc.jones", at=at)


def test_every_canned_response_renders_with_the_account_details(
    console: App, seeded: Seeded
) -> None:
    responses = casework.canned_responses()
    assert len(responses) >= 5
    assert all(r.title and not r.title.startswith("{#") for r in responses)
    with console.db.session() as session:
        case = casework.get_case(session, seeded.urgent_case)
        assert case.reference is not None
        for response in responses:
            text = casework.render_canned(
                response.name, case=case, officer="PC Jones", account=console.settings.account
            )
            assert case.reference in text  # every canned response quotes the reference
            assert len(text) <= casework.MAX_PRIVATE_REPLY_CHARS
            assert "{" not in text and "}" not in text


def test_escalate_raises_one_step_or_to_a_chosen_priority_and_never_lowers(
    console: App, seeded: Seeded
) -> None:
    sla = console.settings.sla
    at = console.clock.now()
    with console.db.session() as session:
        case = casework.escalate(session, seeded.theft_case, by="pc.jones", at=at, sla=sla)
        assert case.priority == "P2"
        assert case.sla_due_at <= at + sla.due_after("P2")
        case = casework.escalate(session, seeded.theft_case, to="P1", by="pc.jones", at=at, sla=sla)
        assert case.priority == "P1"
    with console.db.session() as session:
        with pytest.raises(casework.CaseworkError, match="already P1"):
            casework.escalate(session, seeded.theft_case, by="pc.jones", at=at, sla=sla)
        with pytest.raises(casework.CaseworkError, match="raises the priority"):
            casework.escalate(session, seeded.urgent_case, to="P4", by="pc.jones", at=at, sla=sla)
        with pytest.raises(casework.CaseworkError, match="no priority P9"):
            casework.escalate(session, seeded.urgent_case, to="P9", by="pc.jones", at=at, sla=sla)


def test_close_is_final_for_casework(console: App, seeded: Seeded) -> None:
    at = console.clock.now()
    with console.db.session() as session:
        case = casework.close(session, seeded.urgent_case, by="pc.khan", at=at)
        assert case.status == CaseStatus.CLOSED and case.closed_at == at
    with console.db.session() as session, pytest.raises(casework.CaseworkError, match="closed"):
        casework.assign(session, seeded.urgent_case, to="pc.khan", by="pc.khan", at=at)


def test_a_correction_retags_the_case_and_can_raise_its_priority(
    console: App, seeded: Seeded
) -> None:
    first, second = seeded.theft_messages
    at = console.clock.now() + timedelta(minutes=1)
    with console.db.session() as session:
        casework.correct(
            session,
            second,
            scenarios=["theft", "violent_crime"],
            urgent=True,
            risk=False,
            intent="report_incident",
            by="pc.jones",
            at=at,
            sla=console.settings.sla,
        )
    with console.db.session() as session:
        case = session.get(Case, seeded.theft_case)
        assert case is not None
        assert case.scenarios == ["theft", "violent_crime"]
        assert (case.urgent, case.priority) == (True, "P2")
        message = session.get(Message, second)
        assert message is not None and message.urgent is False  # the model's tags are kept
        # a second correction of the same message replaces the first; the priority stays
        casework.correct(
            session,
            second,
            scenarios=["theft"],
            urgent=False,
            risk=False,
            intent="report_incident",
            by="pc.khan",
            at=at,
            sla=console.settings.sla,
        )
    with console.db.session() as session:
        case = session.get(Case, seeded.theft_case)
        assert case is not None
        assert (case.scenarios, case.urgent, case.priority) == (["theft"], False, "P2")
        in_force = casework.latest_corrections(session, [first, second])
        assert set(in_force) == {second} and in_force[second].corrected_by == "pc.khan"
        logged = session.exec(select(AuditEntry).where(AuditEntry.action == "case.corrected")).all()
        assert [e.detail["was"]["urgent"] for e in logged] == [False, False]
        assert audit.verify(session).ok


def test_a_correction_refuses_unknown_labels(console: App, seeded: Seeded) -> None:
    with console.db.session() as session:
        for scenarios, intent, message in [
            (["burglary"], "report_incident", "unknown scenario burglary"),
            (["theft"], "complain", "unknown intent"),
        ]:
            with pytest.raises(casework.CaseworkError, match=message):
                casework.correct(
                    session,
                    seeded.theft_messages[0],
                    scenarios=scenarios,
                    urgent=False,
                    risk=False,
                    intent=intent,
                    by="pc.jones",
                    at=console.clock.now(),
                    sla=console.settings.sla,
                )


def test_corrections_export_as_redacted_training_examples(console: App, seeded: Seeded) -> None:
    sla = console.settings.sla
    with console.db.session() as session:
        for message_id, scenarios, intent in [
            (seeded.theft_messages[1], ["theft"], "intelligence"),
            (seeded.theft_messages[1], ["theft"], "report_incident"),  # supersedes the first
            (seeded.theft_messages[0], ["theft"], "report_incident"),
        ]:
            casework.correct(
                session,
                message_id,
                scenarios=scenarios,
                urgent=False,
                risk=False,
                intent=intent,
                by="pc.jones",
                at=console.clock.now(),
                sla=sla,
            )
        out = io.StringIO()
        written = casework.export_corrections(session, out, by="sgt.admin", at=console.clock.now())
    lines = out.getvalue().splitlines()
    assert written == len(lines) == 2
    examples = [parse_example(json.loads(line)) for line in lines]  # the training format
    assert {e.intent for e in examples} == {"report_incident"}
    exported = out.getvalue()
    assert "07700 900123" not in exported and "[phone]" in exported
    assert set(json.loads(lines[0])) == {"text", "scenarios", "urgent", "risk", "intent"}


def test_deleting_a_message_deletes_its_corrections(console: App, seeded: Seeded) -> None:
    """Retention and erasure delete messages; no correction may keep them alive."""
    with console.db.session() as session:
        casework.correct(
            session,
            seeded.theft_messages[0],
            scenarios=[],
            urgent=False,
            risk=False,
            intent="other",
            by="pc.jones",
            at=console.clock.now(),
            sla=console.settings.sla,
        )
    with console.db.session() as session:
        delete_messages(session, Message.__table__.c.author_id == "u-bike")  # type: ignore[attr-defined]
    with console.db.session() as session:
        assert session.exec(select(Correction)).all() == []
