"""`campusbot campaigns|posts|users`: plan campaigns, approve posts, manage who may approve."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer
from rich.table import Table

from bot.cli_common import err, out, state_of

campaigns_app = typer.Typer(no_args_is_help=True, help="Crime-prevention campaigns (YAML).")
posts_app = typer.Typer(no_args_is_help=True, help="Posts and their approval.")
users_app = typer.Typer(no_args_is_help=True, help="People and their roles.")

By = Annotated[str, typer.Option("--by", help="Who is acting (a user name); recorded in audit")]


def _local_day(value: str | None, ctx: typer.Context) -> date:
    state = state_of(ctx)
    if value is None:
        return state.app.clock.now().astimezone(state.settings.tz).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None


# -- campaigns -----------------------------------------------------------------------------
@campaigns_app.command("validate")
def campaigns_validate(ctx: typer.Context) -> None:
    """Check every campaign file; all problems are listed, with file and field."""
    from schedules.campaigns import load_campaigns

    campaigns = load_campaigns(state_of(ctx).settings.campaigns_dir)
    out.print(f"{len(campaigns)} campaign(s) valid")


@campaigns_app.command("list")
def campaigns_list(ctx: typer.Context) -> None:
    """Campaigns with their dates, cadence and channels."""
    from schedules.campaigns import load_campaigns

    table = Table()
    for column in ("name", "topic", "start", "end", "cadence", "channels", "posts", "survey"):
        table.add_column(column)
    for c in load_campaigns(state_of(ctx).settings.campaigns_dir):
        table.add_row(
            c.name,
            c.topic.value,
            c.start.isoformat(),
            c.end.isoformat(),
            f"{','.join(c.cadence.days)} {c.cadence.time}",
            ",".join(c.channels),
            str(len(c.posts)),
            "yes" if c.survey else "",
        )
    out.print(table)


@campaigns_app.command("plan")
def campaigns_plan(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days ahead")],
    from_: Annotated[str | None, typer.Option("--from", help="First day (default today)")] = None,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign")] = None,
    by: Annotated[str, typer.Option("--by", help="Who plans (recorded)")] = "planner",
) -> None:
    """Create the posts of the coming days as drafts, ready to submit for approval."""
    from schedules.campaigns import load_campaigns
    from schedules.planner import plan

    state = state_of(ctx)
    campaigns = load_campaigns(state.settings.campaigns_dir)
    if campaign is not None:
        campaigns = [c for c in campaigns if c.name == campaign]
        if not campaigns:
            raise typer.BadParameter(f"no campaign named {campaign}", param_hint="--campaign")
    with state.app.db.session() as session:
        report = plan(
            session,
            campaigns,
            tz=state.settings.tz,
            start=_local_day(from_, ctx),
            days=days,
            now=state.app.clock.now(),
            by=by,
            base_url=state.settings.public_base_url,
        )
    out.print(f"planned {report.created} draft post(s); {report.existing} already planned")
    for problem in report.too_long:
        err.print(f"too long, not planned: {problem}", markup=False)
    if report.too_long:
        raise typer.Exit(1)


# -- posts ---------------------------------------------------------------------------------
@posts_app.command("list")
def posts_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="Only posts in this status")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
    limit: int = 200,
) -> None:
    """Posts by scheduled time."""
    from sqlmodel import col, select

    from bot.models import Post, PostStatus

    if status is not None and status not in {s.value for s in PostStatus}:
        raise typer.BadParameter(
            f"choose from {', '.join(s.value for s in PostStatus)}", param_hint="--status"
        )
    state = state_of(ctx)
    with state.app.db.session() as session:
        query = select(Post).order_by(col(Post.scheduled_for), col(Post.id)).limit(limit)
        if status is not None:
            query = query.where(Post.status == status)
        posts = session.exec(query).all()
    tz = state.settings.tz
    if as_json:
        for p in posts:
            out.print(
                json.dumps(
                    {
                        "id": p.id,
                        "status": p.status,
                        "channel": p.channel,
                        "campaign": p.campaign,
                        "kind": p.kind,
                        "scheduled_for": p.scheduled_for.isoformat() if p.scheduled_for else None,
                        "external_id": p.external_id,
                        "text": p.text,
                    },
                    ensure_ascii=False,
                ),
                markup=False,
            )
        return
    table = Table()
    for column in ("id", "status", "when (London)", "channel", "campaign", "text"):
        table.add_column(column)
    for p in posts:
        when = (
            p.scheduled_for.astimezone(tz).strftime("%a %d %b %Y %H:%M") if p.scheduled_for else ""
        )
        table.add_row(
            str(p.id),
            p.status,
            when,
            p.channel,
            p.campaign or p.kind,
            p.text[:60] + ("…" if len(p.text) > 60 else ""),
        )
    out.print(table)


@posts_app.command("show")
def posts_show(ctx: typer.Context, post_id: int) -> None:
    """One post in full, with its approvals."""
    from bot import posts

    state = state_of(ctx)
    with state.app.db.session() as session:
        post = posts.get_post(session, post_id)
        approvals = posts.approvals_of(session, post_id)
        out.print(
            f"post {post.id} · {post.status} · {post.channel} · {post.campaign or post.kind}"
            f" · by {post.created_by}",
            markup=False,
        )
        if post.scheduled_for:
            out.print(
                f"scheduled {post.scheduled_for.astimezone(state.settings.tz):%A %d %B %Y %H:%M} "
                "(Europe/London)"
            )
        for a in approvals:
            out.print(f"approved tier {a.tier + 1} by {a.approver} at {a.approved_at:%d %b %H:%M}")
        if post.note:
            out.print(f"note: {post.note}", markup=False)
        if post.last_error:
            out.print(f"last error: {post.last_error}", markup=False)
        out.print("")
        out.print(post.text, markup=False)


def _act(ctx: typer.Context, action: str, post_id: int, by: str, **kwargs: object) -> None:
    from bot import posts

    state = state_of(ctx)
    with state.app.db.session() as session:
        fn = getattr(posts, action)
        post = fn(session, post_id, by=by, at=state.app.clock.now(), **kwargs)
        out.print(f"post {post_id} is now {post.status}")


@posts_app.command("submit")
def posts_submit(ctx: typer.Context, post_ids: list[int], by: By) -> None:
    """Send draft posts for approval."""
    for post_id in post_ids:
        _act(ctx, "submit", post_id, by)


@posts_app.command("approve")
def posts_approve(ctx: typer.Context, post_ids: list[int], by: By) -> None:
    """Approve the next tier of each post (never your own)."""
    policy = state_of(ctx).settings.approval
    for post_id in post_ids:
        _act(ctx, "approve", post_id, by, policy=policy)


@posts_app.command("reject")
def posts_reject(
    ctx: typer.Context,
    post_id: int,
    by: By,
    note: Annotated[str, typer.Option(help="What the author should change")],
) -> None:
    """Send a post back to its author with a note."""
    _act(ctx, "reject", post_id, by, note=note)


@posts_app.command("edit")
def posts_edit(
    ctx: typer.Context,
    post_id: int,
    by: By,
    text: Annotated[str, typer.Option(help="The new wording")],
) -> None:
    """Change a post's wording; it goes back to draft and needs approval again."""
    from channels.limits import LIMITS

    state = state_of(ctx)
    with state.app.db.session() as session:
        from bot import posts

        channel = posts.get_post(session, post_id).channel
    _act(ctx, "edit", post_id, by, text=text, max_chars=LIMITS.get(channel))


@posts_app.command("retry")
def posts_retry(ctx: typer.Context, post_id: int, by: By) -> None:
    """Queue a failed post again (after checking it did not go out)."""
    _act(ctx, "retry", post_id, by)


@posts_app.command("pause-all")
def posts_pause_all(
    ctx: typer.Context,
    by: By,
    reason: Annotated[str, typer.Option(help="The incident, for the log")],
) -> None:
    """Stop all campaign publishing (alerts and replies to students still go out)."""
    from bot import posts

    state = state_of(ctx)
    with state.app.db.session() as session:
        posts.pause_all(session, by=by, at=state.app.clock.now(), reason=reason)
    out.print("campaign publishing paused; `campusbot posts resume` to restart")


@posts_app.command("resume")
def posts_resume(ctx: typer.Context, by: By) -> None:
    """Restart campaign publishing after a pause."""
    from bot import posts

    state = state_of(ctx)
    with state.app.db.session() as session:
        posts.resume(session, by=by, at=state.app.clock.now())
    out.print("campaign publishing resumed")


# -- alerts: one text, every channel (bot/sharing.py) ---------------------------------------
alerts_app = typer.Typer(no_args_is_help=True, help="Alerts shared on every channel at once.")


@alerts_app.command("create")
def alerts_create(
    ctx: typer.Context,
    text: Annotated[str, typer.Option(help="The alert, as Facebook and In The Know show it")],
    by: By,
    title: Annotated[str | None, typer.Option(help="Heading (In The Know)")] = None,
    short: Annotated[str | None, typer.Option(help="For X, when --text is too long")] = None,
    link: Annotated[str | None, typer.Option(help="https:// link for more")] = None,
    hashtag: Annotated[list[str] | None, typer.Option(help="Repeat for each")] = None,
) -> None:
    """Write an alert once: one post per enabled channel, each sent for approval."""
    from bot.sharing import create_alert
    from channels.limits import LIMITS, length_for

    state = state_of(ctx)
    with state.app.db.session() as session:
        created = create_alert(
            session,
            state.settings,
            text=text,
            by=by,
            at=state.app.clock.now(),
            title=title,
            short=short,
            link=link,
            hashtags=hashtag or [],
        )
        rows = [(p.id, p.channel, length_for(p.channel, p.text), p.status) for p in created]
    for post_id, channel, length, status in rows:
        out.print(f"post {post_id}: {channel}, {length}/{LIMITS[channel]} characters, {status}")
    ids = " ".join(str(row[0]) for row in rows)
    out.print(f"approve with `campusbot posts approve {ids} --by <approver>`", markup=False)


# -- users ---------------------------------------------------------------------------------
@users_app.command("add")
def users_add(
    ctx: typer.Context,
    username: str,
    role: Annotated[
        list[str], typer.Option("--role", help="admin, comms_officer, officer, analyst")
    ],
    by: Annotated[str, typer.Option("--by", help="Who adds them (recorded)")] = "admin",
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a console password from stdin")
    ] = False,
) -> None:
    """Add a person with one or more roles (and a console password, from stdin)."""
    from bot.crud import users
    from bot.web.auth import set_password

    state = state_of(ctx)
    password = _read_password() if password_stdin else None
    with state.app.db.session() as session:
        user = users.add(
            session,
            username=username,
            roles=role,
            at=state.app.clock.now(),
            by=by,
            display_name=name,
        )
        if password is not None:
            set_password(
                session, username=username, password=password, at=state.app.clock.now(), by=by
            )
    out.print(f"added {user.username} ({', '.join(user.roles)})")


def _read_password() -> str:
    import sys

    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise typer.BadParameter("no password on standard input", param_hint="--password-stdin")
    return password


@users_app.command("reset-password")
def users_reset_password(
    ctx: typer.Context,
    username: str,
    by: Annotated[str, typer.Option("--by")] = "admin",
) -> None:
    """Set a new console password (read from stdin); ends the person's open sessions."""
    from bot.web.auth import set_password

    state = state_of(ctx)
    password = _read_password()
    with state.app.db.session() as session:
        set_password(session, username=username, password=password, at=state.app.clock.now(), by=by)
    out.print(f"password set for {username}")


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """People and their roles."""
    from bot.crud import users

    with state_of(ctx).app.db.session() as session:
        for user in users.list_users(session):
            flag = " (disabled)" if user.disabled else ""
            out.print(f"{user.username}\t{', '.join(user.roles)}{flag}", markup=False)


@users_app.command("disable")
def users_disable(
    ctx: typer.Context, username: str, by: Annotated[str, typer.Option("--by")] = "admin"
) -> None:
    """Stop a person acting (kept for the audit trail, never deleted)."""
    from bot.crud import users

    state = state_of(ctx)
    with state.app.db.session() as session:
        users.disable(session, username=username, at=state.app.clock.now(), by=by)
    out.print(f"disabled {username}")
