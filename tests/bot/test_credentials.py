"""Sealed channel tokens: the key, storing, reading them in the adapters, and renewing X's.

X's token endpoint and Graph are served by `responses` with the bodies in
tests/fixtures/channel_accounts; storage runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import col, select
from typer.testing import CliRunner

from bot.app import App, build
from bot.channel_auth import X_TOKEN_URL, refresh_due
from bot.cli import app as cli
from bot.clock import FixedClock
from bot.config import Settings
from bot.credentials import (
    CredentialError,
    NewToken,
    Sealer,
    StoredToken,
    find,
    new_key,
    save,
    still_missing,
)
from bot.db import Database
from bot.errors import AuthError
from bot.models import AuditEntry, ChannelCredential
from channels.facebook import FacebookChannel
from channels.twitter import TwitterChannel
from tests.conftest import FIXTURES

ACCOUNTS = FIXTURES / "channel_accounts"
BOT_ID = "1450000000000000001"
PAGE_ID = "104000000000001"
OLD_ACCESS = "T0xELWFjY2Vzcy10b2tlbjoxNzk1NjE5NDAwMDAwOjE6MDphdDox"
OLD_REFRESH = "T0xELXJlZnJlc2gtdG9rZW46MTc5NTYxOTQwMDAwMDoxOjA6cnQ6MQ"


def body(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ACCOUNTS / name).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def keyed(db: Database, settings: Settings, clock: FixedClock) -> App:
    """A bot with a credentials key and an X app (a confidential client)."""
    configured = settings.model_copy(
        update={
            "credentials_key": SecretStr(new_key()),
            "twitter": settings.twitter.model_copy(
                update={
                    "user_id": BOT_ID,
                    "client_id": "M1M5R3BMVy13QmpScXkzTUt5OE46MTpjaQ",
                    "client_secret": SecretStr("kG3n-0Yv7f1cGQ2xX9pX3rCqQ8sWm5hJ2tR6yU1oP4aZ"),
                }
            ),
        }
    )
    return build(configured, clock=clock, db=db)


def sealer_of(app: App) -> Sealer:
    return Sealer(app.settings.credentials_key)


def connect_x(app: App, *, expires_in: timedelta, refresh: str | None = OLD_REFRESH) -> None:
    with app.db.session() as session:
        save(
            session,
            sealer_of(app),
            channel="twitter",
            token=NewToken(
                access_token=OLD_ACCESS,
                refresh_token=refresh,
                expires_at=app.clock.now() + expires_in,
                scopes="tweet.read tweet.write users.read offline.access",
            ),
            account_id=BOT_ID,
            account_name="@UCLanCampusCops",
            by="sgt.admin",
            at=app.clock.now(),
        )


def stored(app: App, channel: str = "twitter") -> ChannelCredential:
    with app.db.session() as session:
        found = find(session, channel)
        assert found is not None
        return found


def actions(app: App) -> list[str]:
    with app.db.session() as session:
        return [
            e.action for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
        ]


@pytest.fixture
def x_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mocked:
        yield mocked


# -- the key --------------------------------------------------------------------------------
def test_a_new_key_from_the_cli_seals_and_opens() -> None:
    result = CliRunner().invoke(cli, ["credentials", "new-key"])
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    Fernet(key.encode())  # a valid Fernet key
    sealer = Sealer(SecretStr(key))
    sealed = sealer.seal("EAAGm0PX4ZCpsBA-page-token")
    assert "EAAGm0PX4ZCpsBA" not in sealed
    assert sealer.open(sealed) == "EAAGm0PX4ZCpsBA-page-token"


@pytest.mark.parametrize(
    ("key", "says"),
    [(None, "is not set"), (SecretStr(""), "is not set"), (SecretStr("hunter2"), "not a Fernet")],
)
def test_nothing_is_sealed_without_a_usable_key(key: SecretStr | None, says: str) -> None:
    sealer = Sealer(key)
    assert not sealer.ready
    with pytest.raises(CredentialError) as refused:
        sealer.seal("a token")
    assert "CAMPUSBOT_CREDENTIALS_KEY" in str(refused.value)
    assert says in str(refused.value)
    assert "campusbot credentials new-key" in str(refused.value)


def test_a_secret_sealed_with_another_key_says_so() -> None:
    sealed = Sealer(SecretStr(new_key())).seal("a token")
    with pytest.raises(CredentialError, match="sealed with another key"):
        Sealer(SecretStr(new_key())).open(sealed)


def test_the_key_is_refused_in_config_yaml(tmp_path: Any) -> None:
    from bot.config import load_settings
    from bot.errors import ConfigError

    config = tmp_path / "config.yaml"
    config.write_text(f"credentials_key: {new_key()}\n")
    with pytest.raises(ConfigError, match="credentials_key"):
        load_settings(config)


# -- storing ----------------------------------------------------------------------------------
def test_tokens_are_stored_sealed_and_audited_without_them(keyed: App) -> None:
    connect_x(keyed, expires_in=timedelta(hours=2))
    with keyed.db.engine.connect() as connection:
        raw = connection.execute(text("SELECT * FROM channel_credentials")).mappings().one()
        audit_rows = connection.execute(text("SELECT detail FROM audit_log")).all()
    assert OLD_ACCESS not in json.dumps(dict(raw), default=str)
    assert OLD_REFRESH not in json.dumps(dict(raw), default=str)
    assert sealer_of(keyed).open(raw["sealed_access_token"]) == OLD_ACCESS
    assert not any(OLD_ACCESS in str(row) or OLD_REFRESH in str(row) for row in audit_rows)
    assert actions(keyed) == ["channel.connected"]
    connect_x(keyed, expires_in=timedelta(hours=2))
    assert actions(keyed)[-1] == "channel.reconnected"
    assert stored(keyed).version == 2


def test_an_empty_token_is_never_stored(keyed: App) -> None:
    connect_x(keyed, expires_in=timedelta(hours=2))
    with pytest.raises(CredentialError, match="empty"), keyed.db.session() as session:
        save(
            session,
            sealer_of(keyed),
            channel="twitter",
            token=NewToken(access_token="   "),
            account_id=BOT_ID,
            account_name=None,
            by="sgt.admin",
            at=keyed.clock.now(),
        )
    assert sealer_of(keyed).open(stored(keyed).sealed_access_token) == OLD_ACCESS


def test_the_migration_creates_the_tables_as_the_models_describe(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    ours = ("channel_credentials", "oauth_pending", "totp_secrets", "sign_in_challenges")
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert [d for d in differences if any(name in repr(d) for name in ours)] == []


# -- the adapters prefer a stored token ----------------------------------------------------------
def test_a_stored_token_stands_in_for_the_environments_only_once_connected(keyed: App) -> None:
    gaps = keyed.settings.twitter.missing()
    assert "access_token" in gaps and "consumer_secret" in gaps
    covered = [g for g in gaps if g != "consumer_secret"]
    assert still_missing(keyed.db, "twitter", covered) == covered  # nobody connected yet
    connect_x(keyed, expires_in=timedelta(hours=2))
    assert still_missing(keyed.db, "twitter", covered) == []
    # the webhooks' consumer secret is the app's own: no user token replaces it
    assert still_missing(keyed.db, "twitter", gaps) == gaps


def test_the_app_builds_x_from_a_connected_account_alone(keyed: App, settings: Settings) -> None:
    enabled = keyed.settings.model_copy(
        update={
            "twitter": keyed.settings.twitter.model_copy(
                update={"enabled": True, "consumer_secret": SecretStr("webhook-signing-secret")}
            )
        }
    )
    assert "twitter" not in build(enabled, clock=keyed.clock, db=keyed.db).channels()
    connect_x(keyed, expires_in=timedelta(hours=2))
    assert "twitter" in build(enabled, clock=keyed.clock, db=keyed.db).channels()


def test_x_calls_carry_the_stored_user_token_else_the_environments_keys(
    keyed: App, x_api: responses.RequestsMock
) -> None:
    me = json.loads((FIXTURES / "twitter" / "user_me.json").read_text(encoding="utf-8"))
    x_api.get("https://api.twitter.com/2/users/me", json=me)
    x_api.get("https://api.twitter.com/2/users/me", json=me)
    env = keyed.settings.twitter.model_copy(
        update={
            "consumer_key": SecretStr("env-consumer-key"),
            "consumer_secret": SecretStr("env-consumer-secret"),
            "access_token": SecretStr("env-access-token"),
            "access_token_secret": SecretStr("env-access-secret"),
        }
    )
    reader = StoredToken(keyed.db, sealer_of(keyed), "twitter", cache_seconds=0)
    channel = TwitterChannel(env, stored_token=reader)
    assert channel.check().detail == "@UCLanCampusCops"
    assert x_api.calls[0].request.headers["Authorization"].startswith("OAuth ")
    assert (
        'oauth_consumer_key="env-consumer-key"' in x_api.calls[0].request.headers["Authorization"]
    )

    connect_x(keyed, expires_in=timedelta(hours=2))
    assert channel.check().detail == "@UCLanCampusCops"
    assert x_api.calls[1].request.headers["Authorization"] == f"Bearer {OLD_ACCESS}"


def test_a_post_with_a_photo_goes_with_the_stored_user_token_throughout(
    keyed: App, x_api: responses.RequestsMock, tmp_path: Any
) -> None:
    """Media upload, which bypasses tweepy's Client, uses the connected token too."""
    from PIL import Image

    from bot.messages import OutboundPost

    def tw(name: str) -> Any:
        return json.loads((FIXTURES / "twitter" / name).read_text(encoding="utf-8"))

    photo = tmp_path / "bike-marking.png"
    Image.new("RGB", (600, 400), (14, 60, 120)).save(photo)
    upload = "https://api.twitter.com/2/media/upload"
    media_id = tw("media_upload_initialize_image.json")["data"]["id"]
    x_api.post(f"{upload}/initialize", json=tw("media_upload_initialize_image.json"))
    x_api.post(f"{upload}/{media_id}/append", json=tw("media_upload_append.json"))
    x_api.post(f"{upload}/{media_id}/finalize", json=tw("media_upload_finalize_image.json"))
    x_api.post(
        "https://api.twitter.com/2/tweets",
        json=tw("tweet_create_with_media_response.json"),
        status=201,
    )
    connect_x(keyed, expires_in=timedelta(hours=2))
    reader = StoredToken(keyed.db, sealer_of(keyed), "twitter")
    channel = TwitterChannel(keyed.settings.twitter, stored_token=reader)  # no env keys at all

    channel.publish(OutboundPost(channel="twitter", text="Bike marking", media_paths=(str(photo),)))

    assert len(x_api.calls) == 4
    for call in x_api.calls:
        assert call.request.headers["Authorization"] == f"Bearer {OLD_ACCESS}"


def test_facebook_calls_carry_the_stored_page_token(keyed: App) -> None:
    page = keyed.settings.facebook.model_copy(
        update={"page_id": PAGE_ID, "page_access_token": SecretStr("EAAenv")}
    )
    reader = StoredToken(keyed.db, sealer_of(keyed), "facebook", cache_seconds=0)
    channel = FacebookChannel(page, clock=keyed.clock, stored_token=reader)
    with responses.RequestsMock() as graph:
        graph.get(f"https://graph.facebook.com/v25.0/{PAGE_ID}", json=body("facebook_me_page.json"))
        graph.get(f"https://graph.facebook.com/v25.0/{PAGE_ID}", json=body("facebook_me_page.json"))
        assert channel.check().detail == "UCLan Campus Police"
        with keyed.db.session() as session:
            save(
                session,
                sealer_of(keyed),
                channel="facebook",
                token=NewToken(access_token="EAAstored"),
                account_id=PAGE_ID,
                account_name="UCLan Campus Police",
                by="sgt.admin",
                at=keyed.clock.now(),
            )
        assert channel.check().detail == "UCLan Campus Police"
        sent = [parse_qs((call.request.url or "").split("?", 1)[1]) for call in graph.calls]
    assert sent[0]["access_token"] == ["EAAenv"]
    assert sent[1]["access_token"] == ["EAAstored"]


def test_a_stored_token_that_will_not_open_parks_the_channel(keyed: App) -> None:
    connect_x(keyed, expires_in=timedelta(hours=2))
    other_key = Sealer(SecretStr(new_key()))
    with pytest.raises(AuthError, match="cannot be read") as parked:
        StoredToken(keyed.db, other_key, "twitter")()
    assert parked.value.channel == "twitter"


def test_the_stored_token_is_read_again_after_the_cache_time(keyed: App) -> None:
    ticks = [0.0]
    reader = StoredToken(keyed.db, sealer_of(keyed), "twitter", monotonic=lambda: ticks[0])
    assert reader() is None
    connect_x(keyed, expires_in=timedelta(hours=2))
    assert reader() is None  # within the cache time
    ticks[0] = 31.0
    assert reader() == OLD_ACCESS


# -- renewing X's token ------------------------------------------------------------------------
def test_a_token_near_expiry_is_renewed_and_the_new_refresh_token_kept(
    keyed: App, x_api: responses.RequestsMock
) -> None:
    connect_x(keyed, expires_in=timedelta(minutes=10))
    x_api.post(X_TOKEN_URL, json=body("x_token_refreshed.json"))

    assert refresh_due(keyed) == 1

    sent = parse_qs(str(x_api.calls[0].request.body))
    assert sent == {
        "grant_type": ["refresh_token"],
        "refresh_token": [OLD_REFRESH],
        "client_id": [keyed.settings.twitter.client_id],
    }
    assert x_api.calls[0].request.headers["Authorization"].startswith("Basic ")  # confidential
    renewed = stored(keyed)
    sealer = sealer_of(keyed)
    assert (
        sealer.open(renewed.sealed_access_token) == body("x_token_refreshed.json")["access_token"]
    )
    assert renewed.sealed_refresh_token is not None
    assert (
        sealer.open(renewed.sealed_refresh_token) == body("x_token_refreshed.json")["refresh_token"]
    )
    assert renewed.expires_at == keyed.clock.now() + timedelta(seconds=7200)
    assert renewed.refreshed_at == keyed.clock.now()
    assert not renewed.needs_reauth
    assert actions(keyed)[-1] == "channel.token_refreshed"


def test_a_token_far_from_expiry_is_left_alone(keyed: App, x_api: responses.RequestsMock) -> None:
    connect_x(keyed, expires_in=timedelta(hours=1))
    assert refresh_due(keyed) == 0
    assert len(x_api.calls) == 0


def test_a_refused_refresh_keeps_the_old_token_and_asks_for_a_reconnection(
    keyed: App, x_api: responses.RequestsMock
) -> None:
    connect_x(keyed, expires_in=timedelta(minutes=10))
    x_api.post(X_TOKEN_URL, status=400, json=body("x_token_error_invalid_request.json"))

    assert refresh_due(keyed) == 0

    kept = stored(keyed)
    assert sealer_of(keyed).open(kept.sealed_access_token) == OLD_ACCESS
    assert kept.sealed_refresh_token is not None
    assert sealer_of(keyed).open(kept.sealed_refresh_token) == OLD_REFRESH
    assert kept.needs_reauth
    assert kept.problem is not None and "invalid_request" in kept.problem
    assert "reconnect" in kept.problem
    assert actions(keyed)[-1] == "channel.refresh_refused"
    assert refresh_due(keyed) == 0  # a dead refresh token is not tried again
    assert len(x_api.calls) == 1


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503, "body": "Service Unavailable", "content_type": "text/plain"},
        {"body": requests.ConnectTimeout("connect timeout")},
        {"status": 200, "json": {"token_type": "bearer", "access_token": ""}},
    ],
    ids=["x down", "unreachable", "no token in the answer"],
)
def test_a_refresh_that_did_not_get_through_is_tried_again(
    keyed: App, x_api: responses.RequestsMock, failure: dict[str, Any]
) -> None:
    connect_x(keyed, expires_in=timedelta(minutes=10))
    x_api.post(X_TOKEN_URL, **failure)
    x_api.post(X_TOKEN_URL, json=body("x_token_refreshed.json"))

    assert refresh_due(keyed) == 0
    kept = stored(keyed)
    assert sealer_of(keyed).open(kept.sealed_access_token) == OLD_ACCESS
    assert not kept.needs_reauth and kept.refresh_claimed_at is None

    assert refresh_due(keyed) == 1  # the next run
    assert len(x_api.calls) == 2


def test_an_answer_without_a_refresh_token_keeps_the_old_one(
    keyed: App, x_api: responses.RequestsMock
) -> None:
    answer = {k: v for k, v in body("x_token_refreshed.json").items() if k != "refresh_token"}
    connect_x(keyed, expires_in=timedelta(minutes=10))
    x_api.post(X_TOKEN_URL, json=answer)
    assert refresh_due(keyed) == 1
    kept = stored(keyed)
    assert kept.sealed_refresh_token is not None
    assert sealer_of(keyed).open(kept.sealed_refresh_token) == OLD_REFRESH


def test_a_refresh_claimed_by_another_worker_is_not_repeated(
    keyed: App, x_api: responses.RequestsMock
) -> None:
    connect_x(keyed, expires_in=timedelta(minutes=10))
    with keyed.db.session() as session:
        row = find(session, "twitter")
        assert row is not None
        row.refresh_claimed_at = keyed.clock.now() - timedelta(minutes=1)
        session.add(row)
    assert refresh_due(keyed) == 0
    assert len(x_api.calls) == 0


def test_a_reconnection_during_a_refresh_wins(keyed: App, x_api: responses.RequestsMock) -> None:
    connect_x(keyed, expires_in=timedelta(minutes=10))

    def reconnect_meanwhile(request: Any) -> tuple[int, dict[str, str], str]:
        with keyed.db.session() as session:
            save(
                session,
                sealer_of(keyed),
                channel="twitter",
                token=NewToken(access_token="fresh-from-the-admin", refresh_token="rt-admin"),
                account_id=BOT_ID,
                account_name="@UCLanCampusCops",
                by="sgt.admin",
                at=keyed.clock.now(),
            )
        return 200, {}, json.dumps(body("x_token_refreshed.json"))

    x_api.add_callback(responses.POST, X_TOKEN_URL, callback=reconnect_meanwhile)
    assert refresh_due(keyed) == 0
    assert sealer_of(keyed).open(stored(keyed).sealed_access_token) == "fresh-from-the-admin"


def test_an_expired_token_without_a_refresh_token_asks_for_a_reconnection(
    keyed: App, x_api: responses.RequestsMock
) -> None:
    connect_x(keyed, expires_in=timedelta(minutes=-1), refresh=None)
    assert refresh_due(keyed) == 0
    kept = stored(keyed)
    assert kept.needs_reauth and kept.problem is not None and "reconnect" in kept.problem
    assert actions(keyed)[-1] == "channel.token_expired"
    assert len(x_api.calls) == 0


def test_the_cli_renews_due_tokens(
    keyed: App, x_api: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli_common import State

    connect_x(keyed, expires_in=timedelta(minutes=10))
    x_api.post(X_TOKEN_URL, json=body("x_token_refreshed.json"))
    monkeypatch.setattr(State, "app", property(lambda self: keyed))
    result = CliRunner().invoke(cli, ["credentials", "refresh"])
    assert result.exit_code == 0, result.output
    assert "1 token(s) renewed" in result.output
