"""The approval queue: posts waiting for the signed-in person's tier, previewed per channel.

Every change goes through `bot.posts` (submit, approve, reject, edit), which holds the
workflow's rules (tiers, no self-approval, one tier per person) and audits each step;
this page only shows its answers, refusals included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from bot import posts as workflow
from bot.config import ApprovalSettings
from bot.models import Post, PostApproval, PostStatus, User
from bot.web.access import Approver, ApproverAction, app_of
from bot.web.auth import SignedIn
from bot.web.render import render
from channels.limits import LIMITS, TWEET_LIMIT, fits, length_for

router = APIRouter()
LISTED = 100
DONE = {
    "approved": "Approved.",
    "rejected": "Sent back to its author with your note.",
    "resubmitted": "Edited and sent for approval again.",
    "submitted": "Sent for approval.",
}


@dataclass(frozen=True)
class Preview:
    """A post as its channel will show it, and whether it fits the channel's limit."""

    post: Post
    approvals: list[PostApproval]
    tiers: int
    chars: int
    limit: int
    fits: bool
    yours: bool

    @property
    def counted_as(self) -> str:
        return (
            "weighted characters, as X counts them"
            if self.post.channel == "twitter"
            else ("characters")
        )


def preview(
    post: Post, approvals: list[PostApproval], policy: ApprovalSettings, me: str
) -> Preview:
    return Preview(
        post=post,
        approvals=approvals,
        tiers=len(policy.tiers_for(post.channel)),
        chars=length_for(post.channel, post.text),
        limit=LIMITS.get(post.channel, TWEET_LIMIT),
        fits=fits(post.channel, post.text),
        yours=me in (post.created_by, post.edited_by),
    )


def awaits(user: User, post: Post, approvals: list[PostApproval], policy: ApprovalSettings) -> bool:
    """Whether the post's next tier is one this person may give (not counting authorship:
    their own posts are listed, marked, so the workflow's refusal can be seen)."""
    tiers = policy.tiers_for(post.channel)
    if len(approvals) >= len(tiers) or any(a.approver == user.username for a in approvals):
        return False
    allowed = tiers[len(approvals)]
    return bool(set(user.roles) & set(allowed)) or f"user:{user.username}" in allowed


def _approvals(session: Session, ids: list[int]) -> dict[int, list[PostApproval]]:
    found: dict[int, list[PostApproval]] = {i: [] for i in ids}
    for a in session.exec(
        select(PostApproval)
        .where(col(PostApproval.post_id).in_(ids))
        .order_by(col(PostApproval.tier))
    ):
        found[a.post_id].append(a)
    return found


def _listed(session: Session, status: PostStatus) -> list[Post]:
    return list(
        session.exec(
            select(Post)
            .where(Post.status == status)
            .order_by(col(Post.scheduled_for).is_(None), col(Post.scheduled_for), col(Post.id))
            .limit(LISTED)
        )
    )


def queue_context(request: Request, who: SignedIn) -> dict[str, Any]:
    bot = app_of(request)
    policy = bot.settings.approval
    me = who.user.username
    with bot.db.session() as session:
        pending = list(
            session.exec(
                select(Post)
                .where(Post.status == PostStatus.PENDING_APPROVAL)
                .order_by(col(Post.scheduled_for).is_(None), col(Post.scheduled_for), col(Post.id))
            )
        )
        rejected = _listed(session, PostStatus.REJECTED)
        drafts = _listed(session, PostStatus.DRAFT)
        approvals = _approvals(
            session, [p.id for p in (*pending, *rejected, *drafts) if p.id is not None]
        )
        paused = workflow.paused(session)
    waiting = [
        preview(p, approvals[p.id or 0], policy, me)
        for p in pending
        if awaits(who.user, p, approvals[p.id or 0], policy)
    ][:LISTED]
    return {
        "waiting": waiting,
        "rejected": [preview(p, [], policy, me) for p in rejected],
        "drafts": [preview(p, [], policy, me) for p in drafts],
        "paused": paused,
    }


def _show(
    request: Request,
    who: SignedIn,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = queue_context(request, who)
    context.update(error=error, done=DONE.get(request.query_params.get("done", "")))
    return render(request, "approvals.html", context, who=who, status_code=status_code)


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, who: Approver) -> HTMLResponse:
    return _show(request, who)


def _act(request: Request, who: SignedIn, done: str, action: Any) -> Response:
    bot = app_of(request)
    try:
        with bot.db.session() as session:
            action(session, bot.clock.now())
    except workflow.WorkflowError as exc:
        return _show(request, who, error=str(exc), status_code=409)
    return RedirectResponse(f"/approvals?done={done}", status_code=303)


@router.post("/approvals/{post_id}/approve")
def approve(request: Request, who: ApproverAction, post_id: int) -> Response:
    policy = app_of(request).settings.approval
    return _act(
        request,
        who,
        "approved",
        lambda s, at: workflow.approve(s, post_id, by=who.user.username, at=at, policy=policy),
    )


@router.post("/approvals/{post_id}/reject")
def reject(
    request: Request,
    who: ApproverAction,
    post_id: int,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Only someone who could approve the waiting tier may send the post back."""
    policy = app_of(request).settings.approval

    def act(session: Session, at: Any) -> None:
        post = workflow.get_post(session, post_id)
        if post.status == PostStatus.PENDING_APPROVAL and not awaits(
            who.user, post, workflow.approvals_of(session, post_id), policy
        ):
            raise workflow.WorkflowError(
                f"post {post_id} is not waiting for your tier; its next approver may reject it"
            )
        workflow.reject(session, post_id, by=who.user.username, at=at, note=note)

    return _act(request, who, "rejected", act)


@router.post("/approvals/{post_id}/edit")
def edit_and_resubmit(
    request: Request,
    who: ApproverAction,
    post_id: int,
    text: Annotated[str, Form(max_length=70_000)] = "",
) -> Response:
    """New wording goes back to draft (approvals cleared) and straight into the queue."""

    def act(session: Session, at: Any) -> None:
        channel = workflow.get_post(session, post_id).channel
        if text.strip() and not fits(channel, text):
            raise workflow.WorkflowError(
                f"{length_for(channel, text)} characters as {channel} counts them; "
                f"it allows {LIMITS.get(channel, TWEET_LIMIT)}"
            )
        # X's limit is on the weighted length, checked above; a plain character count
        # would refuse a tweet whose long link X counts as 23.
        limit = None if channel == "twitter" else LIMITS.get(channel)
        workflow.edit(session, post_id, by=who.user.username, at=at, text=text, max_chars=limit)
        workflow.submit(session, post_id, by=who.user.username, at=at)

    return _act(request, who, "resubmitted", act)


@router.post("/approvals/{post_id}/submit")
def submit(request: Request, who: ApproverAction, post_id: int) -> Response:
    return _act(
        request,
        who,
        "submitted",
        lambda s, at: workflow.submit(s, post_id, by=who.user.username, at=at),
    )
