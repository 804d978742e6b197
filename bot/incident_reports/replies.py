"""The report conversation's automatic replies: rendered from approved templates, queued.

They go out like the acknowledgements (``bot.acknowledge``): through the outbox, privately,
and only once an officer has approved the template's exact wording with today's settings;
a changed template holds its replies for approval instead of sending them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.config import Settings
from bot.crud import templates
from bot.models import Message, OutboundMessage, OutboxStatus, ReplyKind
from bot.templating import render_text

QUESTION = "replies/report_question.txt.j2"
MEDIA_RECEIVED = "replies/report_media_received.txt.j2"
FILED = "replies/report_filed.txt.j2"
ADDED = "replies/report_added.txt.j2"
ADD_REFUSED = "replies/report_add_refused.txt.j2"
REPORT_TEMPLATES = (QUESTION, MEDIA_RECEIVED, FILED, ADDED, ADD_REFUSED)
ADD_PATH = "/report/add"


def add_url(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + ADD_PATH


def render(settings: Settings, template: str, **context: Any) -> str:
    """A reply's text: the template with the account's numbers and the add-to-report page."""
    account = settings.account
    return render_text(
        template,
        team_name=account.team_name,
        online_report_url=account.online_report_url,
        support_line=account.support_line,
        sarc=account.sarc,
        sexual_violence_support=account.sexual_violence_support,
        young_person_support=account.young_person_support,
        add_url=add_url(settings),
        **context,
    )


class ReplyQueue:
    """Queues replies for one transaction, checking each template's approval once."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self._approved: dict[str, bool] = {}

    def approved(self, template: str) -> bool:
        if template not in self._approved:
            self._approved[template] = templates.is_approved(
                self.session, template, self.settings.account
            )
        return self._approved[template]

    def queue(
        self,
        template: str,
        *,
        to: Message,
        case_id: int | None,
        at: datetime,
        **context: Any,
    ) -> OutboundMessage:
        """A private reply to ``to`` (the student's message), held if the wording is new."""
        status = OutboxStatus.QUEUED if self.approved(template) else OutboxStatus.NEEDS_APPROVAL
        row = OutboundMessage(
            case_id=case_id,
            in_reply_to_message_id=to.id,
            channel=to.channel,
            conversation_id=to.conversation_id,
            recipient_id=to.author_id,
            in_reply_to_external_id=to.external_id,
            private=True,
            kind=ReplyKind.AUTO_ACK,
            template=template,
            text=render(self.settings, template, **context),
            status=status,
            attempts=0,
            created_by="bot",
            created_at=at,
        )
        self.session.add(row)
        return row
