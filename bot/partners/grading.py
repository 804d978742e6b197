"""Grading intelligence with the national 3x5x2 model before any of it is shared.

The codes and their meanings are the College of Policing's, from Authorised Professional
Practice on intelligence management and its Intelligence Report reference material
(https://www.college.police.uk/app/intelligence-management), which replaced the older
5x5x5 model:

- source evaluation, 3 grades: 1 reliable, 2 untested, 3 not reliable;
- intelligence assessment, 5 grades: A known directly to the source, B known indirectly
  to the source but corroborated, C known indirectly to the source, D not known,
  E suspected to be false;
- handling code, 2 codes: P lawful sharing permitted; C lawful sharing permitted with
  conditions, where the conditions (how far it may go, what the recipient may do with it)
  are written down and travel with the intelligence.

5x5x5 graded the source A-E and the intelligence 1-5: the reverse of 3x5x2. Officers
trained on it type the old codes, so those are refused with a word on which is which
rather than silently read one way or the other.

A case holds intelligence when the classifier tagged one of its messages so, or when an
officer graded it; intelligence is never sent ungraded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bot.crud import audit
from bot.models import Case, IntelligenceGrading, Message
from bot.partners.access import PartnerError, reference_of, require_officer
from classifiers.base import Intent

SOURCE_EVALUATION = {"1": "Reliable", "2": "Untested", "3": "Not reliable"}
INTELLIGENCE_ASSESSMENT = {
    "A": "Known directly to the source",
    "B": "Known indirectly to the source but corroborated",
    "C": "Known indirectly to the source",
    "D": "Not known",
    "E": "Suspected to be false",
}
HANDLING_CODES = {
    "P": "Lawful sharing permitted",
    "C": "Lawful sharing permitted with conditions",
}
MAX_CONDITIONS = 2000


@dataclass(frozen=True)
class Grade:
    """One 3x5x2 evaluation, checked; ``code`` reads as officers say it, e.g. ``2B C``."""

    source: str
    intelligence: str
    handling: str
    conditions: str | None = None

    @property
    def code(self) -> str:
        return f"{self.source}{self.intelligence} {self.handling}"

    @property
    def source_meaning(self) -> str:
        return SOURCE_EVALUATION[self.source]

    @property
    def intelligence_meaning(self) -> str:
        return INTELLIGENCE_ASSESSMENT[self.intelligence]

    @property
    def handling_meaning(self) -> str:
        return HANDLING_CODES[self.handling]

    @classmethod
    def of(cls, row: IntelligenceGrading) -> Grade:
        return cls(row.source, row.intelligence, row.handling, row.conditions)


def parse_grade(
    source: str, intelligence: str, handling: str, conditions: str | None = None
) -> Grade:
    """Check a grading as typed; every refusal says what the valid codes mean."""
    source, intelligence = source.strip().upper(), intelligence.strip().upper()
    handling = handling.strip().upper()
    if source.isalpha() or intelligence.isdigit():
        raise PartnerError(
            f"source {source!r}, intelligence {intelligence!r}: those look like 5x5x5 codes, "
            "which graded the source A-E and the intelligence 1-5; 3x5x2 grades the source "
            f"{_listed(SOURCE_EVALUATION)} and the intelligence {_listed(INTELLIGENCE_ASSESSMENT)}"
        )
    if source not in SOURCE_EVALUATION:
        raise PartnerError(f"source evaluation is one of {_listed(SOURCE_EVALUATION)}")
    if intelligence not in INTELLIGENCE_ASSESSMENT:
        raise PartnerError(f"intelligence assessment is one of {_listed(INTELLIGENCE_ASSESSMENT)}")
    if handling not in HANDLING_CODES:
        raise PartnerError(f"handling code is one of {_listed(HANDLING_CODES)}")
    written = (conditions or "").strip() or None
    if handling == "C" and written is None:
        raise PartnerError(
            "handling code C needs its conditions written down (--conditions): they are shown "
            "on every report that carries this intelligence"
        )
    if handling == "P" and written is not None:
        raise PartnerError("conditions go with handling code C; P means sharing is permitted")
    if written is not None and len(written) > MAX_CONDITIONS:
        raise PartnerError(f"conditions are at most {MAX_CONDITIONS} characters")
    return Grade(source, intelligence, handling, written)


def _listed(codes: dict[str, str]) -> str:
    return "; ".join(f"{code} {meaning.lower()}" for code, meaning in codes.items())


def grade_case(
    session: Session, case: Case, grade: Grade, *, by: str, at: datetime
) -> IntelligenceGrading:
    """Record an officer's evaluation; a later one supersedes it, both are kept."""
    require_officer(session, by)
    row = IntelligenceGrading(
        case_id=case.id or 0,
        source=grade.source,
        intelligence=grade.intelligence,
        handling=grade.handling,
        conditions=grade.conditions,
        graded_by=by,
        graded_at=at,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        at=at,
        actor=by,
        action="partner.intelligence_graded",
        entity="case",
        entity_id=case.id or 0,
        detail={
            "reference": reference_of(case),
            "grading_id": row.id,
            "grade": grade.code,
            "conditions": grade.conditions is not None,
        },
    )
    return row


def latest_grading(session: Session, case_id: int) -> IntelligenceGrading | None:
    return session.exec(
        select(IntelligenceGrading)
        .where(IntelligenceGrading.case_id == case_id)
        .order_by(col(IntelligenceGrading.graded_at).desc(), col(IntelligenceGrading.id).desc())
        .limit(1)
    ).first()


def holds_intelligence(session: Session, case_id: int) -> bool:
    """Tagged as intelligence by the classifier, or graded as such by an officer."""
    tagged = session.exec(
        select(Message.id)
        .where(Message.case_id == case_id, Message.intent == Intent.INTELLIGENCE.value)
        .limit(1)
    ).first()
    return tagged is not None or latest_grading(session, case_id) is not None
