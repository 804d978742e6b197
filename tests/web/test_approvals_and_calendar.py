"""The approval queue and the campaigns calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bot import posts as workflow
from bot.app import App, build
from bot.config import ApprovalSettings
from bot.models import Post, PostApproval, PostStatus
from tests.web.support import client_for, csrf_of, seed_post


def _post(app: App, post_id: int) -> Post:
    with app.db.session() as session:
        post = session.get(Post, post_id)
        assert post is not None
        return post


def test_queue_previews_each_post_against_its_channel_limit(web_app: App) -> None:
    fits = seed_post(web_app, by="dev.comms", text="Bike marking at the SU, Wednesday 12-2 🚲")
    too_long = seed_post(web_app, by="dev.comms", text="x" * 300, days_ahead=3)
    page = client_for(web_app, "cara.comms").get("/approvals")
    assert page.status_code == 200
    first = page.text.split(f'id="post-{fits}"')[1].split("</article>")[0]
    assert "Bike marking at the SU" in first
    assert "41 of 280 weighted characters, as X counts them" in first  # the bike emoji is 2
    second = page.text.split(f'id="post-{too_long}"')[1].split("</article>")[0]
    assert "300 of 280" in second and "too long for twitter" in second


def test_approve_as_a_second_person_and_never_your_own(web_app: App) -> None:
    post_id = seed_post(web_app, by="cara.comms")
    author = client_for(web_app, "cara.comms")
    listed = author.get("/approvals").text
    assert f'id="post-{post_id}"' in listed and "your post or your wording" in listed
    own = author.post(f"/approvals/{post_id}/approve", data={"csrf_token": csrf_of(author)})
    assert own.status_code == 409
    assert "nobody approves their own post or their own wording" in own.text
    assert _post(web_app, post_id).status == PostStatus.PENDING_APPROVAL

    colleague = client_for(web_app, "dev.comms")
    done = colleague.post(
        f"/approvals/{post_id}/approve",
        data={"csrf_token": csrf_of(colleague)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/approvals?done=approved"
    assert _post(web_app, post_id).status == PostStatus.APPROVED
    assert f'id="post-{post_id}"' not in colleague.get("/approvals").text


def test_an_analyst_sees_no_approve_button_and_is_refused(web_app: App) -> None:
    post_id = seed_post(web_app, by="cara.comms")
    analyst = client_for(web_app, "ana.lyst")
    assert analyst.get("/approvals").status_code == 403
    assert "Approve" not in analyst.get("/calendar").text
    assert 'href="/approvals"' not in analyst.get("/calendar").text
    refused = analyst.post(f"/approvals/{post_id}/approve", data={"csrf_token": csrf_of(analyst)})
    assert refused.status_code == 403
    assert _post(web_app, post_id).status == PostStatus.PENDING_APPROVAL


def test_reject_with_a_note_then_edit_and_resubmit(web_app: App) -> None:
    post_id = seed_post(web_app, by="cara.comms")
    reviewer = client_for(web_app, "dev.comms")
    csrf = csrf_of(reviewer)
    no_note = reviewer.post(f"/approvals/{post_id}/reject", data={"csrf_token": csrf})
    assert no_note.status_code == 409 and "a rejection needs a note" in no_note.text
    reviewer.post(
        f"/approvals/{post_id}/reject",
        data={"csrf_token": csrf, "note": "Say where the bike marking is"},
    )
    post = _post(web_app, post_id)
    assert post.status == PostStatus.REJECTED and post.note == "Say where the bike marking is"

    author = client_for(web_app, "cara.comms")
    sent_back = author.get("/approvals").text.split("Sent back")[1]
    assert "Say where the bike marking is" in sent_back
    author.post(
        f"/approvals/{post_id}/edit",
        data={"csrf_token": csrf_of(author), "text": "Bike marking at the SU, Wednesday 12-2."},
    )
    post = _post(web_app, post_id)
    assert post.status == PostStatus.PENDING_APPROVAL and post.edited_by == "cara.comms"
    assert post.text == "Bike marking at the SU, Wednesday 12-2."

    # the reviewer rewords it: now it is their wording, and someone else must approve it
    reviewer.post(
        f"/approvals/{post_id}/edit",
        data={"csrf_token": csrf, "text": "Bike marking: SU, Wednesday 12-2."},
    )
    own = reviewer.post(f"/approvals/{post_id}/approve", data={"csrf_token": csrf})
    assert own.status_code == 409 and "their own wording" in own.text
    too_long = reviewer.post(
        f"/approvals/{post_id}/edit", data={"csrf_token": csrf, "text": "y" * 281}
    )
    assert too_long.status_code == 409 and "281 characters as twitter counts them" in too_long.text
    admin = client_for(web_app, "sgt.admin")
    admin.post(f"/approvals/{post_id}/approve", data={"csrf_token": csrf_of(admin)})
    assert _post(web_app, post_id).status == PostStatus.APPROVED


def test_a_draft_is_sent_for_approval_from_the_queue(web_app: App) -> None:
    post_id = seed_post(web_app, by="cara.comms", submit=False)
    client = client_for(web_app, "cara.comms")
    assert f'action="/approvals/{post_id}/submit"' in client.get("/approvals").text
    client.post(f"/approvals/{post_id}/submit", data={"csrf_token": csrf_of(client)})
    assert _post(web_app, post_id).status == PostStatus.PENDING_APPROVAL


def test_each_tier_waits_for_its_own_approvers(web_app: App) -> None:
    policy = ApprovalSettings(tiers={"default": [["comms_officer"], ["user:pc.khan"]]})
    app = build(
        web_app.settings.model_copy(update={"approval": policy}), clock=web_app.clock, db=web_app.db
    )
    post_id = seed_post(app, by="cara.comms")
    khan = client_for(app, "pc.khan")  # an officer named in tier 2
    assert f'id="post-{post_id}"' not in khan.get("/approvals").text  # tier 1 first
    early = khan.post(
        f"/approvals/{post_id}/reject", data={"csrf_token": csrf_of(khan), "note": "no"}
    )
    assert early.status_code == 409 and "not waiting for your tier" in early.text
    assert client_for(app, "pc.jones").get("/approvals").status_code == 403  # not named

    dev = client_for(app, "dev.comms")
    dev.post(f"/approvals/{post_id}/approve", data={"csrf_token": csrf_of(dev)})
    assert _post(app, post_id).status == PostStatus.PENDING_APPROVAL
    page = khan.get("/approvals").text
    assert f'id="post-{post_id}"' in page and "tier 2 of 2" in page
    assert "Tier 1 approved by dev.comms" in page
    khan.post(f"/approvals/{post_id}/approve", data={"csrf_token": csrf_of(khan)})
    assert _post(app, post_id).status == PostStatus.APPROVED
    with app.db.session() as session:
        approvers = session.exec(
            select(PostApproval.approver).where(PostApproval.post_id == post_id)
        ).all()
    assert sorted(approvers) == ["dev.comms", "pc.khan"]


def test_calendar_shows_posts_by_local_day_and_channel(web_app: App) -> None:
    now = web_app.clock.now()
    with web_app.db.session() as session:
        for channel, when, status in [
            ("twitter", datetime(2027, 6, 1, 23, 30, tzinfo=UTC), PostStatus.APPROVED),
            ("facebook", datetime(2027, 6, 1, 9, 0, tzinfo=UTC), PostStatus.PENDING_APPROVAL),
            ("twitter", now + timedelta(days=1), PostStatus.DRAFT),
        ]:
            session.add(
                Post(
                    channel=channel,
                    campaign="welcome-week",
                    text="Welcome to UCLan",
                    status=status,
                    scheduled_for=when,
                    created_by="cara.comms",
                    created_at=now,
                    updated_at=now,
                )
            )
    analyst = client_for(web_app, "ana.lyst")
    soon = analyst.get("/calendar")
    assert soon.status_code == 200 and "1 post(s) planned" in soon.text and "draft" in soon.text
    june = analyst.get("/calendar?from=2027-06-01&weeks=1").text
    first, second = june.split('datetime="2027-06-01"')[1], june.split('datetime="2027-06-02"')[1]
    # 23:30 UTC on 1 June is 00:30 on 2 June in London (BST)
    assert "10:00 welcome-week · pending approval" in first.split("</tr>")[0]
    assert "00:30 welcome-week · approved" in second.split("</tr>")[0]
    assert analyst.get("/calendar?weeks=13").status_code == 422


def test_a_paused_campaign_is_announced(web_app: App) -> None:
    with web_app.db.session() as session:
        workflow.pause_all(session, by="sgt.admin", at=web_app.clock.now(), reason="major incident")
    page = client_for(web_app, "cara.comms").get("/approvals").text
    assert "Campaign publishing is paused (major incident)" in page
