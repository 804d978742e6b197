"""All tables, imported here so SQLModel.metadata (and Alembic) sees every one."""

from bot.models.audit import AuditEntry
from bot.models.case import Case, CaseStatus, Priority
from bot.models.cursor import ChannelCursor
from bot.models.deadletter import DeadLetter, DeadLetterStatus
from bot.models.message import Message, MessageAttachment, MessageState
from bot.models.outbox import OutboundMessage, OutboxStatus, ReplyKind
from bot.models.post import Post, PostStatus
from bot.models.template_approval import TemplateApproval

__all__ = [
    "AuditEntry",
    "Case",
    "CaseStatus",
    "ChannelCursor",
    "DeadLetter",
    "DeadLetterStatus",
    "Message",
    "MessageAttachment",
    "MessageState",
    "OutboundMessage",
    "OutboxStatus",
    "Post",
    "PostStatus",
    "Priority",
    "ReplyKind",
    "TemplateApproval",
]
