"""Automatic acknowledgements: the safety reply a student gets without waiting for a person.

Rules, in order:
- only for urgent or risk-to-life messages, and for a person's first message (signposting);
- never to public chatter that does not address the account;
- privately wherever the channel can, publicly only as a fallback, and then at most once
  per conversation (X's automation rules);
- from a template whose exact wording an officer approved once; a changed template holds
  its replies for approval instead of sending them.

``AckPlanner`` answers those questions for a whole batch with a few queries up front.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, tuple_
from sqlmodel import Session, col, select

from bot.config import AccountSettings
from bot.crud import templates
from bot.messages import StoredMessage
from bot.models import Message, OutboundMessage, OutboxStatus, ReplyKind
from bot.templating import render_text
from channels.registry import capabilities_for
from classifiers.base import Classification

PRIVATE_TEMPLATE = "replies/acknowledgement.txt.j2"
PUBLIC_TEMPLATE = "replies/acknowledgement_public.txt.j2"
AUTO_TEMPLATES = (PRIVATE_TEMPLATE, PUBLIC_TEMPLATE)


class AckPlanner:
    def __init__(
        self, session: Session, messages: Sequence[StoredMessage], account: AccountSettings
    ) -> None:
        self.account = account
        self._approved = {
            name: templates.is_approved(session, name, account) for name in AUTO_TEMPLATES
        }
        authors = list({(m.channel, m.author_id) for m in messages})
        # The first message each person ever sent on a channel gets the signposting.
        self._first_id: dict[tuple[str, str], int] = {}
        if authors:
            wanted = set(authors)
            for channel, author_id, first_id in session.exec(
                select(Message.channel, Message.author_id, func.min(Message.id))
                .where(col(Message.author_id).in_({a for _, a in authors}))
                .group_by(Message.channel, Message.author_id)
            ):
                if first_id is not None and (channel, author_id) in wanted:
                    self._first_id[(channel, author_id)] = first_id
        conversations = list({(m.channel, m.conversation_id) for m in messages if not m.private})
        self._publicly_acked: set[tuple[str, str]] = set()
        if conversations:
            self._publicly_acked = set(
                session.exec(
                    select(OutboundMessage.channel, OutboundMessage.conversation_id)
                    .where(
                        tuple_(OutboundMessage.channel, OutboundMessage.conversation_id).in_(
                            conversations
                        ),
                        OutboundMessage.kind == ReplyKind.AUTO_ACK,
                        col(OutboundMessage.private).is_(False),
                    )
                    .distinct()
                ).all()
            )
        self._rendered: dict[tuple[str, bool, bool, bool], str] = {}

    def plan(
        self,
        message: StoredMessage,
        case_id: int | None,
        classification: Classification,
        now: datetime,
    ) -> dict[str, Any] | None:
        """The acknowledgement this message deserves, if any, as a row for the outbox table."""
        first_contact = self._first_id.get((message.channel, message.author_id)) == message.id
        if not (classification.urgent or classification.risk or first_contact):
            return None
        if not message.private and not message.addressed_to_account:
            return None
        capabilities = capabilities_for(message.channel)
        private = message.private or capabilities.private_reply
        conversation = (message.channel, message.conversation_id)
        if not private:
            if not capabilities.public_reply or conversation in self._publicly_acked:
                return None
            self._publicly_acked.add(conversation)
        template = PRIVATE_TEMPLATE if private else PUBLIC_TEMPLATE
        status = OutboxStatus.QUEUED if self._approved[template] else OutboxStatus.NEEDS_APPROVAL
        return {
            "case_id": case_id,
            "in_reply_to_message_id": message.id,
            "channel": message.channel,
            "conversation_id": message.conversation_id,
            "recipient_id": message.author_id,
            "in_reply_to_external_id": message.external_id,
            "private": private,
            "kind": ReplyKind.AUTO_ACK.value,
            "template": template,
            "text": self._render(template, classification, first_contact),
            "status": status.value,
            "attempts": 0,
            "created_by": "bot",
            "created_at": now,
        }

    def _render(self, template: str, classification: Classification, first_contact: bool) -> str:
        key = (template, classification.urgent, classification.risk, first_contact)
        if key not in self._rendered:
            self._rendered[key] = render_text(
                template,
                team_name=self.account.team_name,
                support_line=self.account.support_line,
                online_report_url=self.account.online_report_url,
                urgent=classification.urgent,
                risk=classification.risk,
                first_contact=first_contact,
            )
        return self._rendered[key]
