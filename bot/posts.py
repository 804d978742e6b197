"""The post approval workflow: the only way a post's status changes outside publishing.

    draft -> pending_approval -> approved -> publishing -> published
                   |                 |            \\-> failed -> approved (retry)
                   v                 v
               rejected          expired (not approved, or approved but far too late)

Rules: nobody approves their own post; one person approves at most one tier of a post; each
tier's approver must hold a role (or be a person) that config names for that tier and
channel; any edit returns the post to draft and clears its approvals. Every transition is
written to the audit log with who, from, to and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session, and_, col, or_, select

from bot.config import ApprovalSettings
from bot.crud import audit
from bot.errors import BotError
from bot.models import Post, PostApproval, PostKind, PostStatus, SystemFlag, User

PAUSE_FLAG = "campaign_publishing_paused"
EDITABLE = {
    PostStatus.DRAFT,
    PostStatus.PENDING_APPROVAL,
    PostStatus.REJECTED,
    PostStatus.APPROVED,
    PostStatus.EXPIRED,
    PostStatus.FAILED,
}
_ALERT_TIMED = {PostStatus.DRAFT, PostStatus.PENDING_APPROVAL, PostStatus.APPROVED}


class WorkflowError(BotError):
    """A transition that the rules refuse; the message says which rule."""


def _transition(
    session: Session,
    post: Post,
    to: PostStatus,
    *,
    by: str,
    at: datetime,
    why: str = "",
    **detail: object,
) -> None:
    before, post_id = post.status, post.id
    post.status = to
    post.updated_at = at
    if post.kind == PostKind.ALERT and to in _ALERT_TIMED:
        # An alert goes out as soon as it is approved; until then it has no time, so it
        # never expires while it waits for an approver (nor after an edit sends it back).
        post.scheduled_for = at if to == PostStatus.APPROVED else None
    session.add(post)
    try:
        session.flush()  # the versioned UPDATE: fails if another process changed the post
    except StaleDataError:
        raise WorkflowError(
            f"post {post_id} was changed by someone else meanwhile; look at it again"
        ) from None
    audit.record(
        session,
        at=at,
        actor=by,
        action="post.transition",
        entity="post",
        entity_id=post.id or 0,
        detail={"from": before, "to": to.value, "why": why, **detail},
    )


def get_post(session: Session, post_id: int) -> Post:
    post = session.get(Post, post_id)
    if post is None:
        raise WorkflowError(f"no post {post_id}")
    return post


def _user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or user.disabled:
        raise WorkflowError(f"{username} is not an active user (see `campusbot users add`)")
    return user


def approvals_of(session: Session, post_id: int) -> list[PostApproval]:
    return list(
        session.exec(
            select(PostApproval)
            .where(PostApproval.post_id == post_id)
            .order_by(col(PostApproval.tier))
        )
    )


def submit(session: Session, post_id: int, *, by: str, at: datetime) -> Post:
    post = get_post(session, post_id)
    if post.status not in (PostStatus.DRAFT, PostStatus.REJECTED):
        raise WorkflowError(f"post {post_id} is {post.status}; only a draft can be submitted")
    _transition(session, post, PostStatus.PENDING_APPROVAL, by=by, at=at)
    return post


def approve(
    session: Session, post_id: int, *, by: str, at: datetime, policy: ApprovalSettings
) -> Post:
    """Record the next tier's approval; the last tier moves the post to approved."""
    post = get_post(session, post_id)
    if post.status != PostStatus.PENDING_APPROVAL:
        raise WorkflowError(f"post {post_id} is {post.status}; only a pending post is approved")
    if by in (post.created_by, post.edited_by):
        raise WorkflowError("nobody approves their own post or their own wording")
    user = _user(session, by)
    done = approvals_of(session, post_id)
    if any(a.approver == by for a in done):
        raise WorkflowError(f"{by} has already approved a tier of post {post_id}")
    tiers = policy.tiers_for(post.channel)
    tier = len(done)
    allowed = tiers[tier]
    if not (set(user.roles) & set(allowed) or f"user:{by}" in allowed):
        raise WorkflowError(
            f"tier {tier + 1} of {len(tiers)} for {post.channel} needs one of "
            f"{', '.join(allowed)}; {by} has {', '.join(user.roles) or 'no role'}"
        )
    session.add(PostApproval(post_id=post_id, tier=tier, approver=by, approved_at=at))
    audit.record(
        session,
        at=at,
        actor=by,
        action="post.approved_tier",
        entity="post",
        entity_id=post_id,
        detail={"tier": tier + 1, "of": len(tiers)},
    )
    if tier + 1 == len(tiers):
        _transition(session, post, PostStatus.APPROVED, by=by, at=at)
    return post


def reject(session: Session, post_id: int, *, by: str, at: datetime, note: str) -> Post:
    post = get_post(session, post_id)
    if post.status != PostStatus.PENDING_APPROVAL:
        raise WorkflowError(f"post {post_id} is {post.status}; only a pending post is rejected")
    if not note.strip():
        raise WorkflowError("a rejection needs a note for the author")
    _user(session, by)
    _clear_approvals(session, post_id)
    post.note = note
    _transition(session, post, PostStatus.REJECTED, by=by, at=at, why="rejected")
    return post


def edit(
    session: Session,
    post_id: int,
    *,
    by: str,
    at: datetime,
    text: str,
    max_chars: int | None = None,
) -> Post:
    """Change the wording; whatever was approved before must be approved again."""
    post = get_post(session, post_id)
    if post.status not in EDITABLE:
        raise WorkflowError(f"post {post_id} is {post.status} and can no longer be edited")
    if not text.strip():
        raise WorkflowError("a post needs some text")
    if max_chars is not None and len(text) > max_chars:
        raise WorkflowError(f"{len(text)} characters; {post.channel} allows {max_chars}")
    _clear_approvals(session, post_id)
    post.text = text
    post.note = None
    post.edited_by = by
    _transition(session, post, PostStatus.DRAFT, by=by, at=at, why="edited")
    return post


def retry(session: Session, post_id: int, *, by: str, at: datetime) -> Post:
    post = get_post(session, post_id)
    if post.status != PostStatus.FAILED:
        raise WorkflowError(f"post {post_id} is {post.status}; only a failed post is retried")
    _user(session, by)
    post.last_error = None
    _transition(session, post, PostStatus.APPROVED, by=by, at=at, why="retry")
    return post


def expire_overdue(session: Session, *, at: datetime, grace: timedelta) -> int:
    """Posts whose time has passed unapproved, or approved ones now too late to be useful."""
    overdue = session.exec(
        select(Post).where(
            col(Post.scheduled_for).is_not(None),
            or_(
                and_(
                    col(Post.status).in_([PostStatus.DRAFT, PostStatus.PENDING_APPROVAL]),
                    col(Post.scheduled_for) < at,
                ),
                and_(col(Post.status) == PostStatus.APPROVED, col(Post.scheduled_for) < at - grace),
            ),
        )
    ).all()
    for post in overdue:
        _transition(session, post, PostStatus.EXPIRED, by="bot", at=at, why="time passed")
    return len(overdue)


def _clear_approvals(session: Session, post_id: int) -> None:
    for approval in approvals_of(session, post_id):
        session.delete(approval)


# -- pausing during a critical incident ----------------------------------------------------
def pause_all(session: Session, *, by: str, at: datetime, reason: str) -> None:
    if not reason.strip():
        raise WorkflowError("say why campaign publishing is paused")
    flag = session.get(SystemFlag, PAUSE_FLAG) or SystemFlag(
        key=PAUSE_FLAG, value="", set_by=by, set_at=at
    )
    flag.value, flag.set_by, flag.set_at = reason, by, at
    session.add(flag)
    audit.record(
        session,
        at=at,
        actor=by,
        action="posts.paused",
        entity="system",
        entity_id=PAUSE_FLAG,
        detail={},
    )


def resume(session: Session, *, by: str, at: datetime) -> None:
    flag = session.get(SystemFlag, PAUSE_FLAG)
    if flag is not None:
        session.delete(flag)
    audit.record(
        session,
        at=at,
        actor=by,
        action="posts.resumed",
        entity="system",
        entity_id=PAUSE_FLAG,
        detail={},
    )


def paused(session: Session) -> SystemFlag | None:
    return session.get(SystemFlag, PAUSE_FLAG)


def publishable_kinds(session: Session) -> Sequence[str]:
    """Alerts always go out; campaign posts only while publishing is not paused."""
    return [PostKind.ALERT] if paused(session) else [PostKind.ALERT, PostKind.CAMPAIGN]
