"""The JSON API under /api/v1: the console's casework and approvals, for integrations.

A separate FastAPI application mounted at /api/v1, so its OpenAPI schema
(/api/v1/openapi.json) describes the API and nothing of the console. Every request carries
``Authorization: Bearer cbt_...`` (``campusbot users token create``); the token acts as
its user, with that user's roles, and every action goes through the same functions as the
console (bot/casework.py, bot/posts.py), so the rules and the audit log are the same.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from bot import casework, posts
from bot.app import App
from bot.crud import api_tokens
from bot.errors import BotError
from bot.models import Case, CaseStatus, Message, Post, PostStatus, Priority, Role, User
from bot.web.access import may_approve
from classifiers.base import Intent, Scenario

RowId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a row id")]
CASEWORK = frozenset({Role.OFFICER.value, Role.ADMIN.value})


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CaseOut(Out):
    id: int
    reference: str | None
    channel: str
    status: str
    priority: str
    scenarios: list[str]
    urgent: bool
    risk: bool
    needs_human: bool
    assignee: str | None
    opened_at: datetime
    updated_at: datetime
    sla_due_at: datetime
    first_human_reply_at: datetime | None
    closed_at: datetime | None


class MessageOut(Out):
    id: int
    received_at: datetime
    private: bool
    text: str
    scenarios: list[str]
    urgent: bool | None
    risk: bool | None
    intent: str | None
    language: str | None


class ReplyOut(Out):
    id: int
    kind: str
    status: str
    text: str
    created_by: str
    created_at: datetime
    sent_at: datetime | None


class CaseDetail(BaseModel):
    case: CaseOut
    messages: list[MessageOut]
    replies: list[ReplyOut]


class PostOut(Out):
    id: int
    kind: str
    channel: str
    campaign: str | None
    text: str
    link: str | None
    status: str
    scheduled_for: datetime
    created_by: str
    published_at: datetime | None
    external_id: str | None


class AssignIn(BaseModel):
    to: str = Field(min_length=1, max_length=64, description="the officer's user name")


class EscalateIn(BaseModel):
    to: Priority | None = Field(default=None, description="default: one step up")


class ReplyIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000)
    template: str | None = Field(
        default=None, max_length=128, description="the canned response it came from"
    )


class CorrectionIn(BaseModel):
    scenarios: list[Scenario] = Field(max_length=6)
    urgent: bool
    risk: bool
    intent: Intent


class RejectIn(BaseModel):
    note: str = Field(min_length=1, max_length=1000)


class Refusal(BaseModel):
    detail: str


REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Refusal, "description": "no valid token"},
    403: {"model": Refusal, "description": "the token's user lacks the role"},
    404: {"model": Refusal, "description": "no such thing"},
    409: {"model": Refusal, "description": "the rules refuse it (the detail says which)"},
}


def create_api(bot: App) -> FastAPI:
    api = FastAPI(
        title="campusbot API",
        version="1",
        description="Casework and approvals for integrations. Bearer tokens only.",
        docs_url=None,
        redoc_url=None,
        responses=REFUSALS,
    )

    @api.exception_handler(ApiError)
    async def _refused(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"detail": exc.detail}, exc.status, headers=headers)

    @api.exception_handler(BotError)
    async def _rule(request: Request, exc: BotError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 409)

    def session() -> Iterator[Session]:
        with bot.db.session() as opened:
            yield opened

    Db = Annotated[Session, Depends(session)]

    def caller(request: Request, db: Db) -> User:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = None
        if scheme.lower() == "bearer" and token:
            user = api_tokens.user_for(db, token.strip(), at=bot.clock.now())
        if user is None:
            raise ApiError(401, "a valid bearer token is needed (campusbot users token create)")
        return user

    Caller = Annotated[User, Depends(caller)]

    def needs(user: User, roles: frozenset[str]) -> str:
        if not roles & set(user.roles):
            raise ApiError(403, f"{user.username}'s role does not allow this")
        return user.username

    def case_or_404(db: Session, case_id: int) -> Case:
        case = db.get(Case, case_id)
        if case is None:
            raise ApiError(404, f"no case {case_id}")
        return case

    @api.get("/cases", response_model=list[CaseOut])
    def list_cases(
        user: Caller,
        db: Db,
        status: CaseStatus | None = None,
        priority: Priority | None = None,
        channel: Annotated[str | None, Query(max_length=32)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> list[Case]:
        """Open cases first by priority, then the most recently updated."""
        needs(user, CASEWORK)
        query = select(Case)
        if status is not None:
            query = query.where(Case.status == status.value)
        if priority is not None:
            query = query.where(Case.priority == priority.value)
        if channel is not None:
            query = query.where(Case.channel == channel)
        query = query.order_by(col(Case.priority), col(Case.updated_at).desc(), col(Case.id))
        return list(db.exec(query.offset(offset).limit(limit)))

    @api.get("/cases/{case_id}", response_model=CaseDetail)
    def get_case(case_id: RowId, user: Caller, db: Db) -> CaseDetail:
        needs(user, CASEWORK)
        case = case_or_404(db, case_id)
        return CaseDetail(
            case=CaseOut.model_validate(case),
            messages=[MessageOut.model_validate(m) for m in casework.messages_of(db, case_id)],
            replies=[ReplyOut.model_validate(r) for r in casework.replies_of(db, case_id)],
        )

    @api.post("/cases/{case_id}/assign", response_model=CaseOut)
    def assign(case_id: RowId, body: AssignIn, user: Caller, db: Db) -> Case:
        by = needs(user, CASEWORK)
        case_or_404(db, case_id)
        return casework.assign(db, case_id, to=body.to, by=by, at=bot.clock.now())

    @api.post("/cases/{case_id}/escalate", response_model=CaseOut)
    def escalate(case_id: RowId, body: EscalateIn, user: Caller, db: Db) -> Case:
        by = needs(user, CASEWORK)
        case_or_404(db, case_id)
        return casework.escalate(
            db, case_id, to=body.to, by=by, at=bot.clock.now(), sla=bot.settings.sla
        )

    @api.post("/cases/{case_id}/close", response_model=CaseOut)
    def close(case_id: RowId, user: Caller, db: Db) -> Case:
        by = needs(user, CASEWORK)
        case_or_404(db, case_id)
        return casework.close(db, case_id, by=by, at=bot.clock.now())

    @api.post("/cases/{case_id}/replies", response_model=ReplyOut, status_code=201)
    def reply(case_id: RowId, body: ReplyIn, user: Caller, db: Db) -> Any:
        by = needs(user, CASEWORK)
        case_or_404(db, case_id)
        queued = casework.reply(
            db, case_id, text=body.text, by=by, at=bot.clock.now(), template=body.template
        )
        db.flush()
        return queued

    @api.post("/messages/{message_id}/correction", status_code=201, response_model=Refusal)
    def correct(message_id: RowId, body: CorrectionIn, user: Caller, db: Db) -> Refusal:
        by = needs(user, CASEWORK)
        if db.get(Message, message_id) is None:
            raise ApiError(404, f"no message {message_id}")
        casework.correct(
            db,
            message_id,
            scenarios=[s.value for s in body.scenarios],
            urgent=body.urgent,
            risk=body.risk,
            intent=body.intent.value,
            by=by,
            at=bot.clock.now(),
            sla=bot.settings.sla,
        )
        return Refusal(detail="stored as a correction and a new training example")

    def approver(user: User) -> str:
        """Whoever an approval tier names, by role or as user:<name> (as in the console)."""
        if not may_approve(user, bot.settings.approval):
            raise ApiError(403, f"no approval tier names {user.username} or their role")
        return user.username

    @api.get("/posts", response_model=list[PostOut])
    def list_posts(
        user: Caller,
        db: Db,
        status: PostStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[Post]:
        approver(user)
        query = select(Post).order_by(col(Post.scheduled_for), col(Post.id))
        if status is not None:
            query = query.where(Post.status == status.value)
        return list(db.exec(query.limit(limit)))

    def post_or_404(db: Session, post_id: int) -> None:
        if db.get(Post, post_id) is None:
            raise ApiError(404, f"no post {post_id}")

    @api.post("/posts/{post_id}/approve", response_model=PostOut)
    def approve(post_id: RowId, user: Caller, db: Db) -> Post:
        by = approver(user)
        post_or_404(db, post_id)
        return posts.approve(db, post_id, by=by, at=bot.clock.now(), policy=bot.settings.approval)

    @api.post("/posts/{post_id}/reject", response_model=PostOut)
    def reject(post_id: RowId, body: RejectIn, user: Caller, db: Db) -> Post:
        by = approver(user)
        post_or_404(db, post_id)
        return posts.reject(db, post_id, by=by, at=bot.clock.now(), note=body.note)

    return api
