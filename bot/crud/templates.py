"""Approving the wording of automatic reply templates."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from bot.config import AccountSettings
from bot.crud import audit
from bot.models import TemplateApproval
from bot.templating import template_sha256


def _fingerprint(name: str, account: AccountSettings) -> str:
    return template_sha256(name, account.model_dump(mode="json"))


def approve(
    session: Session, *, name: str, by: str, at: datetime, account: AccountSettings
) -> TemplateApproval:
    """Approve the template's current wording with today's settings; idempotent."""
    sha = _fingerprint(name, account)
    existing = session.exec(
        select(TemplateApproval).where(
            TemplateApproval.name == name, TemplateApproval.sha256 == sha
        )
    ).first()
    if existing is not None:
        return existing
    approval = TemplateApproval(name=name, sha256=sha, approved_by=by, approved_at=at)
    session.add(approval)
    session.flush()
    audit.record(
        session,
        at=at,
        actor=by,
        action="template.approved",
        entity="template",
        entity_id=name,
        detail={"sha256": sha},
    )
    return approval


def is_approved(session: Session, name: str, account: AccountSettings) -> bool:
    sha = _fingerprint(name, account)
    return (
        session.exec(
            select(TemplateApproval.id).where(
                TemplateApproval.name == name, TemplateApproval.sha256 == sha
            )
        ).first()
        is not None
    )
