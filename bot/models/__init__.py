"""All tables, imported here so SQLModel.metadata (and Alembic) sees every one."""

from bot.models.api_call import ApiCall
from bot.models.api_token import ApiToken
from bot.models.audit import AuditEntry
from bot.models.case import Case, CaseStatus, Priority
from bot.models.correction import Correction
from bot.models.credential import ChannelCredential as ChannelCredential
from bot.models.credential import OAuthPending as OAuthPending
from bot.models.credential import SignInChallenge as SignInChallenge
from bot.models.credential import TotpSecret as TotpSecret
from bot.models.cursor import ChannelCursor
from bot.models.deadletter import DeadLetter, DeadLetterStatus
from bot.models.flag import SystemFlag
from bot.models.incident_report import AttachmentFetch as AttachmentFetch
from bot.models.incident_report import FetchStatus as FetchStatus
from bot.models.incident_report import IncidentReport as IncidentReport
from bot.models.incident_report import ReportEntry as ReportEntry
from bot.models.incident_report import ReportKind as ReportKind
from bot.models.incident_report import ReportStatus as ReportStatus
from bot.models.incident_report import ReportStep as ReportStep
from bot.models.media import MediaItem
from bot.models.meeting import Booking, BookingStatus, MeetingSlot, SlotKind
from bot.models.message import Message, MessageAttachment, MessageState
from bot.models.metrics import (
    ChannelDailyMetric,
    ChannelPeriodMetric,
    MessageScenario,
    PostDailyMetric,
)
from bot.models.notification import (
    Alert,
    AlertNotification,
    AlertReadMark,
    AlertReason,
    AlertRoute,
    NotificationStatus,
)
from bot.models.outbox import OutboundMessage, OutboxStatus, ReplyKind
from bot.models.partner import IntelligenceGrading, PartnerSending, SendingStatus
from bot.models.post import Post, PostApproval, PostKind, PostStatus
from bot.models.survey import SurveyClick, SurveyLink
from bot.models.template_approval import TemplateApproval
from bot.models.user import Role, User
from bot.models.web_session import SignInAttempt, WebSession

__all__ = [
    "Alert",
    "AlertNotification",
    "AlertReadMark",
    "AlertReason",
    "AlertRoute",
    "ApiCall",
    "ApiToken",
    "AuditEntry",
    "Booking",
    "BookingStatus",
    "Case",
    "CaseStatus",
    "ChannelCursor",
    "ChannelDailyMetric",
    "ChannelPeriodMetric",
    "Correction",
    "DeadLetter",
    "DeadLetterStatus",
    "IntelligenceGrading",
    "MediaItem",
    "MeetingSlot",
    "Message",
    "MessageAttachment",
    "MessageScenario",
    "MessageState",
    "NotificationStatus",
    "OutboundMessage",
    "OutboxStatus",
    "PartnerSending",
    "Post",
    "PostApproval",
    "PostDailyMetric",
    "PostKind",
    "PostStatus",
    "Priority",
    "ReplyKind",
    "Role",
    "SendingStatus",
    "SignInAttempt",
    "SlotKind",
    "SurveyClick",
    "SurveyLink",
    "SystemFlag",
    "TemplateApproval",
    "User",
    "WebSession",
]
