"""Surveys in the database: definitions copied in, answers recorded, free text tagged.

- ``store_definition`` copies a survey file's questions and choices into the database the
  first time it is answered, and again whenever the file changes; nothing is ever deleted,
  so answers to a choice later taken out still count. Changing a question's kind once it
  has answers is refused: the counts would mean something else.
- ``record_response`` stores one response in one go; the database's unique constraints make
  "one response per browser" and "one response per email" hold under concurrency.
- ``tag_free_text`` runs the classifier on free-text answers, so reports can say how many
  mention theft, drugs...; an answer whose tagging failed is tried again on the next run.
- ``collect_in_the_know`` turns stored In The Know replies to a survey into responses; it
  is idempotent (a message answers at most once) and can run as often as wanted.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, and_, exists, func, select, update
from sqlmodel import Session

from bot.bulk import insert_rows
from bot.crud import audit
from bot.errors import ConfigError
from bot.models import Message, Post
from bot.models.survey import (
    SurveyAnswer,
    SurveyAnswerScenario,
    SurveyChoice,
    SurveyQuestion,
    SurveyRecord,
    SurveyResponse,
)
from bot.survey_replies import parse_reply
from bot.surveys import Given, Survey
from classifiers.base import Classifier

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

WEB = "web"
IN_THE_KNOW = "in_the_know"
TAG_BATCH = 500
SCAN_BATCH = 500
# Replies to a survey with no opening date are looked for this far back.
UNDATED_LOOKBACK = timedelta(days=90)
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|fw|fwd|aw|sv|antw)\s*(?:\[\d+\])?\s*:\s*)+", re.I)


def _t(model: Any) -> Any:
    return model.__table__


@dataclass(frozen=True)
class StoredIds:
    questions: dict[str, int]
    choices: dict[tuple[str, str], int]  # (question key, choice key)


# -- definitions -----------------------------------------------------------------------------
def store_definition(session: Session, survey: Survey, *, tz: ZoneInfo, at: datetime) -> StoredIds:
    """The survey's question and choice ids, after copying in the file if it changed."""
    surveys = _t(SurveyRecord)
    digest = session.execute(
        select(surveys.c.digest).where(surveys.c.id == survey.id)
    ).scalar_one_or_none()
    if digest != survey.digest:
        _write_definition(session, survey, tz=tz, at=at)
    return _ids(session, survey.id)


def _ids(session: Session, survey_id: str) -> StoredIds:
    q, c = _t(SurveyQuestion), _t(SurveyChoice)
    questions: dict[str, int] = dict(
        session.execute(select(q.c.key, q.c.id).where(q.c.survey_id == survey_id)).all()
    )
    choices = {
        (qkey, ckey): cid
        for qkey, ckey, cid in session.execute(
            select(q.c.key, c.c.key, c.c.id)
            .join(c, c.c.question_id == q.c.id)
            .where(q.c.survey_id == survey_id)
        )
    }
    return StoredIds(questions, choices)


def _write_definition(session: Session, survey: Survey, *, tz: ZoneInfo, at: datetime) -> None:
    surveys, q, c, a = _t(SurveyRecord), _t(SurveyQuestion), _t(SurveyChoice), _t(SurveyAnswer)
    opens, closes = survey.window(tz)
    values = {
        "title": survey.title,
        "external_url": str(survey.external_url) if survey.external_url else None,
        "opens_at": opens,
        "closes_at": closes,
    }
    # Two first answers at once: one inserts, the other waits for it and skips.
    insert_rows(
        session,
        surveys,
        [{"id": survey.id, **values, "digest": "", "stored_at": at}],
        skip_conflicts_on=["id"],
    )
    stored = {
        key: (qid, kind)
        for key, qid, kind in session.execute(
            select(q.c.key, q.c.id, q.c.kind).where(q.c.survey_id == survey.id)
        )
    }
    for question in survey.questions:
        old = stored.get(question.key)
        if old is None or old[1] == question.kind.value:
            continue
        answered = session.execute(select(exists().where(a.c.question_id == old[0]))).scalar()
        if answered:
            raise ConfigError(
                f"survey {survey.id}: question {question.key} was {old[1]} and is now "
                f"{question.kind.value}, but it has answers; give the changed question a new key"
            )
        session.execute(update(c).where(c.c.question_id == old[0]).values(current=False))
    insert_rows(
        session,
        q,
        [
            {
                "survey_id": survey.id,
                "key": question.key,
                "position": i,
                "kind": question.kind.value,
                "text": question.text,
                "current": True,
            }
            for i, question in enumerate(survey.questions, start=1)
        ],
        skip_conflicts_on=["survey_id", "key"],
    )
    session.execute(update(q).where(q.c.survey_id == survey.id).values(current=False))
    for i, question in enumerate(survey.questions, start=1):
        session.execute(
            update(q)
            .where(q.c.survey_id == survey.id, q.c.key == question.key)
            .values(position=i, kind=question.kind.value, text=question.text, current=True)
        )
    ids = _ids(session, survey.id).questions
    for question in survey.questions:
        qid = ids[question.key]
        options = question.options()
        insert_rows(
            session,
            c,
            [
                {"question_id": qid, "key": o.key, "position": i, "label": o.label, "current": True}
                for i, o in enumerate(options, start=1)
            ],
            skip_conflicts_on=["question_id", "key"],
        )
        session.execute(update(c).where(c.c.question_id == qid).values(current=False))
        for i, option in enumerate(options, start=1):
            session.execute(
                update(c)
                .where(c.c.question_id == qid, c.c.key == option.key)
                .values(position=i, label=option.label, current=True)
            )
    session.execute(
        update(surveys).where(surveys.c.id == survey.id).values(**values, digest=survey.digest)
    )
    audit.record(
        session,
        at=at,
        actor="surveys",
        action="survey.stored",
        entity="survey",
        entity_id=survey.id,
        detail={"digest": survey.digest, "questions": len(survey.questions)},
    )


# -- responses -------------------------------------------------------------------------------
def respondent_digest(survey_id: str, browser_token: str) -> str:
    """What identifies a browser's response: not the cookie itself, and different per survey."""
    return hashlib.sha256(f"{survey_id}\x00{browser_token}".encode()).hexdigest()


@dataclass(frozen=True)
class Arrival:
    """Where a response came from: its source and, through a tracking link, the channel."""

    source: str
    channel: str | None = None
    campaign: str | None = None
    link_id: int | None = None


def record_response(
    session: Session,
    survey: Survey,
    answers: Sequence[Given],
    *,
    arrival: Arrival,
    tz: ZoneInfo,
    at: datetime,
    respondent: str | None = None,
    message_id: int | None = None,
    free_text: str | None = None,
    submitted_at: datetime | None = None,
) -> int | None:
    """Store checked answers (and any free text that answered no question); the response's
    id, or None when this browser or this message has already answered. ``submitted_at``
    (default ``at``) is when the person answered: a reply's own time."""
    ids = store_definition(session, survey, tz=tz, at=at)
    row = {
        "survey_id": survey.id,
        "source": arrival.source,
        "channel": arrival.channel,
        "campaign": arrival.campaign,
        "link_id": arrival.link_id,
        "respondent": respondent,
        "message_id": message_id,
        "submitted_at": submitted_at or at,
    }
    unique = ["survey_id", "respondent"] if respondent else ["message_id"] if message_id else []
    inserted = insert_rows(
        session, _t(SurveyResponse), [row], returning=["id"], skip_conflicts_on=unique
    )
    if not inserted:
        return None
    response_id = int(inserted[0][0])
    rows: list[dict[str, Any]] = []

    def add(question_id: int | None, choice_id: int | None, text: str | None) -> None:
        rows.append(
            {
                "response_id": response_id,
                "question_id": question_id,
                "choice_id": choice_id,
                "text": text,
                "tagged_at": None,
            }
        )

    for given in answers:
        question_id = ids.questions[given.question]
        for key in given.choices:
            add(question_id, ids.choices[(given.question, key)], None)
        if given.text and given.text.strip():
            add(question_id, None, given.text.strip())
    if free_text and free_text.strip():
        add(None, None, free_text.strip())
    insert_rows(session, _t(SurveyAnswer), rows)
    return response_id


def tag_free_text(
    session: Session, classifier: Classifier, *, at: datetime, limit: int = TAG_BATCH
) -> int:
    """Tag up to ``limit`` untagged free-text answers with the classifier's scenarios."""
    a = _t(SurveyAnswer)
    pending = session.execute(
        select(a.c.id, a.c.text)
        .where(a.c.choice_id.is_(None), a.c.text.is_not(None), a.c.tagged_at.is_(None))
        .order_by(a.c.id)
        .limit(limit)
    ).all()
    if not pending:
        return 0
    found = classifier.classify([text for _, text in pending])
    insert_rows(
        session,
        _t(SurveyAnswerScenario),
        [
            {"answer_id": answer_id, "scenario": scenario.value}
            for (answer_id, _), tags in zip(pending, found, strict=True)
            for scenario in tags.scenarios
        ],
        skip_conflicts_on=["answer_id", "scenario"],
    )
    session.execute(
        update(a).where(a.c.id.in_([answer_id for answer_id, _ in pending])).values(tagged_at=at)
    )
    return len(pending)


def clear_old_free_text(session: Session, *, before: datetime, dry_run: bool = False) -> int:
    """Retention: empty free text given before ``before``; the choices and the scenario tags
    (which say nothing about who wrote it) stay, so the counts in old reports still hold."""
    a, r = _t(SurveyAnswer), _t(SurveyResponse)
    old = and_(
        a.c.text.is_not(None),
        a.c.response_id.in_(select(r.c.id).where(r.c.submitted_at < before)),
    )
    if dry_run:
        return int(session.execute(select(func.count()).select_from(a).where(old)).scalar_one())
    result = session.execute(update(a).where(old).values(text=None))
    return int(cast(CursorResult[Any], result).rowcount)


# -- In The Know replies -----------------------------------------------------------------------
@dataclass
class CollectReport:
    examined: int = 0
    recorded: int = 0
    with_answers: int = 0
    free_text_only: int = 0
    problems: list[str] = field(default_factory=list)


def _phrase(value: str) -> str:
    return " ".join(value.casefold().split())


def _thread_keys(conversation_id: str, in_reply_to: str | None, raw: Any) -> set[str]:
    keys = {k for k in (conversation_id, in_reply_to) if k}
    keys |= {k.removeprefix("alert:") for k in keys}
    if isinstance(raw, Mapping) and raw.get("alert_id"):
        keys.add(str(raw["alert_id"]))
    return keys


@dataclass(frozen=True)
class _Matcher:
    """Which survey (and campaign) a reply answers, by the three signs it can carry."""

    by_post: dict[str, tuple[Survey, str]]  # published In The Know post id -> survey, campaign
    by_alert: dict[str, Survey]
    by_subject: list[Survey]

    def match(
        self, conversation_id: str, in_reply_to: str | None, raw: Any
    ) -> tuple[Survey, str | None] | None:
        keys = _thread_keys(conversation_id, in_reply_to, raw)
        for key in sorted(keys):
            if key in self.by_post:
                return self.by_post[key]
        for key in sorted(keys):
            if key in self.by_alert:
                return self.by_alert[key], None
        subject = raw.get("subject") if isinstance(raw, Mapping) else None
        if isinstance(subject, str) and subject.strip():
            said = _phrase(_REPLY_PREFIX.sub("", subject))
            for survey in self.by_subject:
                if _phrase(survey.reply_subject) in said:
                    return survey, None
        return None


def _matcher(
    session: Session, surveys: Sequence[Survey], campaign_surveys: Mapping[str, str]
) -> _Matcher:
    by_id = {s.id: s for s in surveys}
    campaigns = {name: sid for name, sid in campaign_surveys.items() if sid in by_id}
    p = _t(Post)
    by_post: dict[str, tuple[Survey, str]] = {}
    if campaigns:
        for external_id, campaign in session.execute(
            select(p.c.external_id, p.c.campaign).where(
                p.c.channel == IN_THE_KNOW,
                p.c.external_id.is_not(None),
                p.c.campaign.in_(list(campaigns)),
            )
        ):
            by_post[external_id] = (by_id[campaigns[campaign]], campaign)
            by_post[external_id.removeprefix("alert:")] = (by_id[campaigns[campaign]], campaign)
    by_alert = {alert: s for s in surveys for alert in s.in_the_know.alert_ids}
    return _Matcher(by_post, by_alert, list(surveys))


def collect_in_the_know(
    session: Session,
    surveys: Iterable[Survey],
    campaign_surveys: Mapping[str, str],
    *,
    tz: ZoneInfo,
    now: datetime,
) -> CollectReport:
    """Record every stored In The Know reply to an open survey that is not yet recorded.

    ``campaign_surveys`` maps campaign name to the survey id it links to. A reply that
    answers no survey, or comes outside the survey's days, stays an ordinary message.
    """
    report = CollectReport()
    ours = [s for s in surveys if not s.is_external]
    if not ours:
        return report
    matcher = _matcher(session, ours, campaign_surveys)
    since = min((s.window(tz)[0] or now - UNDATED_LOOKBACK) for s in ours)
    m, r = _t(Message), _t(SurveyResponse)
    last_id = 0
    while True:
        batch = session.execute(
            select(m.c.id, m.c.conversation_id, m.c.in_reply_to, m.c.raw, m.c.text, m.c.received_at)
            .where(
                m.c.channel == IN_THE_KNOW,
                m.c.received_at >= since,
                m.c.id > last_id,
                ~exists().where(r.c.message_id == m.c.id),
            )
            .order_by(m.c.id)
            .limit(SCAN_BATCH)
        ).all()
        if not batch:
            return report
        last_id = batch[-1].id
        for row in batch:
            report.examined += 1
            found = matcher.match(row.conversation_id, row.in_reply_to, row.raw)
            if found is None or not row.text.strip():
                continue
            survey, campaign = found
            if survey.state(row.received_at, tz) != "open":
                continue
            parsed = parse_reply(row.text, survey)
            recorded = record_response(
                session,
                survey,
                parsed.answers,
                arrival=Arrival(IN_THE_KNOW, channel=IN_THE_KNOW, campaign=campaign),
                tz=tz,
                at=now,
                submitted_at=row.received_at,
                message_id=row.id,
                free_text=parsed.free_text,
            )
            if recorded is None:
                continue
            report.recorded += 1
            if parsed.answers:
                report.with_answers += 1
            else:
                report.free_text_only += 1
            report.problems += [f"message {row.id}: {p}" for p in parsed.problems]


def run_collection(app: App) -> tuple[CollectReport, int]:
    """One round of `campusbot surveys collect` (and of the worker's job): In The Know
    replies taken in, then every untagged free-text answer tagged. Returns the collection
    report and how many answers were tagged."""
    from bot.surveys import campaign_surveys, load_surveys, unknown_references
    from schedules.campaigns import load_campaigns

    surveys = load_surveys(app.settings.surveys_dir)
    links = campaign_surveys(load_campaigns(app.settings.campaigns_dir))
    problems = unknown_references(surveys, links)
    if problems:
        raise ConfigError("\n".join(problems))
    now = app.clock.now()
    with app.db.session() as session:
        report = collect_in_the_know(session, surveys, links, tz=app.settings.tz, now=now)
    tagged = 0
    while True:
        with app.db.session() as session:
            done = tag_free_text(session, app.classifier, at=now)
        tagged += done
        if done < TAG_BATCH:
            return report, tagged
