"""Connecting the channel accounts: X by OAuth 2.0 with PKCE, Facebook by a pasted page token.

X (Authorization Code with PKCE): ``start_x`` records a state and a code verifier against
the admin's console session and returns X's authorise URL; X sends the admin back to
``/accounts/twitter/callback``, and ``finish_x`` checks the state belongs to that same
session (single use, ten minutes at most), exchanges the code, asks X which account it was
and refuses any but ``twitter.user_id``. Access tokens last two hours: ``refresh_due``
renews them beforehand with the refresh token (``offline.access``), which X replaces on
every refresh. Run it every few minutes on one worker::

    "refresh_channel_tokens": (lambda: refresh_due(app), REFRESH_EVERY_SECONDS)

in ``schedules/worker.py``'s jobs (leader only: not in SHARED_JOBS), or from cron with
`campusbot credentials refresh`. A refresh X refuses keeps the old token and marks the
channel as needing re-authorisation; a refresh that could not reach X is tried again on
the next run.

The two token requests are plain form posts (RFC 6749 sections 4.1.3 and 6) made with
requests: requests-oauthlib would need an environment variable to accept a grant whose
scopes differ from those asked for, and has no type information.

Facebook: the admin pastes a long-lived page access token; it is checked with ``GET /me``
against ``facebook.page_id`` before it is stored. Every step is audited (who, when, which
account), never a token.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import quote, urlencode

import facebook
import requests
from sqlalchemy import CursorResult, delete, or_, update
from sqlmodel import col, select

from bot.app import App
from bot.config import Settings, TwitterSettings
from bot.credentials import CredentialError, NewToken, Sealer, find, save
from bot.crud import audit
from bot.crud.api_calls import BillableCall, CostKind, price_micros, record
from bot.errors import BotError
from bot.models import ChannelCredential, OAuthPending

log = logging.getLogger(__name__)

X_AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
X_TOKEN_URL = "https://api.x.com/2/oauth2/token"  # noqa: S105 - a URL, not a secret
X_ME_URL = "https://api.x.com/2/users/me"
# Read and answer mentions and DMs, post with media, and stay connected (refresh tokens).
X_SCOPES = (
    "tweet.read",
    "tweet.write",
    "users.read",
    "dm.read",
    "dm.write",
    "offline.access",
    "media.write",
)
CALLBACK_PATH = "/accounts/twitter/callback"
PENDING_FOR = timedelta(minutes=10)
REFRESH_AHEAD = timedelta(minutes=15)  # renew a token this long before it expires
REFRESH_EVERY_SECONDS = 300
CLAIM_FOR = timedelta(minutes=5)  # a refresh claimed longer ago than this was abandoned
TIMEOUT = (5.0, 30.0)


class ConnectFailed(BotError):
    """Why an account was not connected, in words for the admin; nothing stored changed.

    ``reason`` is a short code for the audit log.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class TokenRefused(BotError):
    """X's token endpoint answered with an OAuth error: the grant or refresh token is dead."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"X refused the token request ({error}): {description}".rstrip(": "))
        self.error = error


class TokenUnavailable(BotError):
    """X could not be reached, failed (5xx) or answered unreadably: worth trying again."""


def sealer_for(app: App) -> Sealer:
    return Sealer(app.settings.credentials_key)


def callback_url(settings: Settings) -> str:
    """The redirect URI to register in the X developer console, exactly as sent."""
    return settings.public_base_url.rstrip("/") + CALLBACK_PATH


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _challenge(verifier: str) -> str:
    """PKCE S256 (RFC 7636 section 4.2): base64url of the verifier's SHA-256, unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# -- X: connecting ------------------------------------------------------------------------
def start_x(app: App, *, username: str, session_sha256: str) -> str:
    """Record a new authorisation for this admin's session; returns X's authorise URL."""
    try:
        return _start_x(app, username=username, session_sha256=session_sha256)
    except ConnectFailed as exc:
        _audit_failure(app, channel="twitter", by=username, reason=exc.reason)
        raise


def _start_x(app: App, *, username: str, session_sha256: str) -> str:
    client_id = app.settings.twitter.client_id
    if not client_id:
        raise ConnectFailed(
            "twitter.client_id is not set: copy the OAuth 2.0 Client ID from the app's "
            "'Keys and tokens' page in the X developer console into config.yaml",
            reason="no_client_id",
        )
    sealer = sealer_for(app)
    try:
        sealer.require()
    except CredentialError as exc:
        raise ConnectFailed(str(exc), reason="no_key") from None
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43..128
    state = secrets.token_urlsafe(32)
    at = app.clock.now()
    with app.db.session() as session:
        session.execute(delete(OAuthPending).where(col(OAuthPending.created_at) < at - PENDING_FOR))
        session.add(
            OAuthPending(
                state_sha256=_sha256(state),
                channel="twitter",
                session_sha256=session_sha256,
                username=username,
                sealed_verifier=sealer.seal(verifier),
                created_at=at,
            )
        )
        audit.record(
            session,
            at=at,
            actor=username,
            action="channel.connect_started",
            entity="channel",
            entity_id="twitter",
            detail={"scopes": list(X_SCOPES)},
        )
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": callback_url(app.settings),
        "scope": " ".join(X_SCOPES),
        "state": state,
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    }
    return f"{X_AUTHORIZE_URL}?{urlencode(query, quote_via=quote)}"


def finish_x(
    app: App,
    *,
    state: str,
    code: str | None,
    error: str | None,
    username: str,
    session_sha256: str,
) -> ChannelCredential:
    """Complete an authorisation X sent back; raises ``ConnectFailed`` (audited) if it fails."""
    try:
        return _finish_x(
            app,
            state=state,
            code=code,
            error=error,
            username=username,
            session_sha256=session_sha256,
        )
    except ConnectFailed as exc:
        _audit_failure(app, channel="twitter", by=username, reason=exc.reason)
        raise


def _finish_x(
    app: App,
    *,
    state: str,
    code: str | None,
    error: str | None,
    username: str,
    session_sha256: str,
) -> ChannelCredential:
    at = app.clock.now()
    with app.db.session() as session:
        # Only this session's own authorisation is taken (and used up): a state from
        # elsewhere neither works here nor cancels the admin's own.
        pending = session.exec(
            select(OAuthPending).where(
                OAuthPending.state_sha256 == _sha256(state),
                OAuthPending.session_sha256 == session_sha256,
                OAuthPending.channel == "twitter",
            )
        ).first()
        sealed_verifier = None
        if pending is not None:
            session.delete(pending)
            if at - pending.created_at <= PENDING_FOR:
                sealed_verifier = pending.sealed_verifier
    if sealed_verifier is None:
        raise ConnectFailed(
            "this authorisation is unknown, was started in another sign-in, or took longer "
            f"than {int(PENDING_FOR.total_seconds() // 60)} minutes: start again",
            reason="state",
        )
    if error:
        raise ConnectFailed(
            f"X did not authorise the app ({error[:64]}); nothing changed", reason="denied"
        )
    if not code:
        raise ConnectFailed("X sent no authorisation code; start again", reason="no_code")
    sealer = sealer_for(app)
    try:
        verifier = sealer.open(sealed_verifier)
    except CredentialError as exc:
        raise ConnectFailed(str(exc), reason="no_key") from None
    redirect = callback_url(app.settings)
    try:
        token = _x_token(
            app.settings.twitter,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect,
                "code_verifier": verifier,
            },
            at=at,
        )
    except TokenRefused as exc:
        raise ConnectFailed(f"{exc}; start again", reason="code_refused") from None
    except TokenUnavailable as exc:
        raise ConnectFailed(f"{exc}; nothing changed, try again", reason="unreachable") from None
    account_id, handle = _x_account(token.access_token)
    expected = app.settings.twitter.user_id
    if expected and account_id != expected:
        raise ConnectFailed(
            f"you authorised @{handle} (id {account_id}), but twitter.user_id is {expected}: "
            f"sign out of X, sign in as @{app.settings.twitter.account_handle} and connect "
            "again",
            reason="wrong_account",
        )
    with app.db.session() as session:
        record(
            session,
            BillableCall(
                channel="twitter",
                method="GET",
                endpoint="/2/users/me",
                kind=CostKind.USER_READ,
                units=1,
                cost_micros=price_micros(app.settings.twitter.cost, CostKind.USER_READ),
                purpose="connect",
                status=200,
            ),
            at=at,
        )
        stored = save(
            session,
            sealer,
            channel="twitter",
            token=token,
            account_id=account_id,
            account_name=f"@{handle}",
            by=username,
            at=at,
        )
        session.expunge(stored)
    return stored


def _x_token(settings: TwitterSettings, form: dict[str, str], *, at: datetime) -> NewToken:
    client_id = settings.client_id or ""
    secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
    try:
        response = requests.post(
            X_TOKEN_URL,
            data={**form, "client_id": client_id},
            # Confidential clients authenticate with Basic; public ones by client_id alone.
            auth=(client_id, secret) if secret else None,
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
        )
    except requests.RequestException as exc:
        raise TokenUnavailable(f"X could not be reached ({type(exc).__name__})") from None
    body = _json_object(response)
    if response.status_code >= 500:
        raise TokenUnavailable(f"X failed to answer the token request ({response.status_code})")
    if response.status_code >= 400:
        if body is None:
            raise TokenUnavailable(f"X answered the token request with {response.status_code}")
        raise TokenRefused(
            str(body.get("error") or response.status_code),
            str(body.get("error_description") or ""),
        )
    access = body.get("access_token") if body is not None else None
    if body is None or not isinstance(access, str) or not access.strip():
        raise TokenUnavailable("X answered the token request without an access token")
    refresh = body.get("refresh_token")
    expires_in = body.get("expires_in")
    return NewToken(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh.strip() else None,
        expires_at=at + timedelta(seconds=expires_in) if isinstance(expires_in, int) else None,
        scopes=str(body.get("scope") or ""),
    )


def _x_account(access_token: str) -> tuple[str, str]:
    """Which account X issued the token for: its id and handle."""
    try:
        response = requests.get(
            X_ME_URL, headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT
        )
    except requests.RequestException as exc:
        raise ConnectFailed(
            f"X could not be reached to check the account ({type(exc).__name__}); try again",
            reason="unreachable",
        ) from None
    body = _json_object(response)
    data = body.get("data") if body is not None and response.ok else None
    if not isinstance(data, dict) or not data.get("id") or not data.get("username"):
        raise ConnectFailed(
            f"X would not say which account was authorised ({response.status_code}); "
            "nothing stored, try again",
            reason="account_unknown",
        )
    return str(data["id"]), str(data["username"])


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# -- X: refreshing ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Claimed:
    version: int
    sealed_refresh: str


def refresh_due(app: App) -> int:
    """Renew the X token if it expires within ``REFRESH_AHEAD``; returns how many renewed.

    Safe to run on several workers at once: the row is claimed first, and a result is only
    written if no reconnection replaced the token meanwhile.
    """
    at = app.clock.now()
    _expired_without_refresh(app, at)
    claimed = _claim(app, at)
    if claimed is None:
        return 0
    sealer = sealer_for(app)
    try:
        refresh_token = sealer.open(claimed.sealed_refresh)
        token = _x_token(
            app.settings.twitter,
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            at=at,
        )
    except (CredentialError, TokenRefused) as exc:
        _refused(app, claimed, at, problem=f"{exc}: reconnect the account", error=_code_of(exc))
        return 0
    except TokenUnavailable as exc:
        log.warning("channel=twitter token refresh failed, will retry: %s", exc)
        _release(app, claimed)
        return 0
    with app.db.session() as session:
        table = ChannelCredential
        values: dict[str, Any] = {
            "sealed_access_token": sealer.seal(token.access_token),
            "expires_at": token.expires_at,
            "refreshed_at": at,
            "refresh_claimed_at": None,
            "version": claimed.version + 1,
        }
        if token.refresh_token:  # X rotates it; an answer without one keeps the old
            values["sealed_refresh_token"] = sealer.seal(token.refresh_token)
        if token.scopes:
            values["scopes"] = token.scopes[:500]
        written = session.execute(
            update(table)
            .where(col(table.channel) == "twitter", col(table.version) == claimed.version)
            .values(**values)
        )
        if cast(CursorResult[Any], written).rowcount != 1:
            return 0  # reconnected while this ran: the new connection stands
        audit.record(
            session,
            at=at,
            actor="bot",
            action="channel.token_refreshed",
            entity="channel",
            entity_id="twitter",
            detail={"expires_at": token.expires_at.isoformat() if token.expires_at else None},
        )
    return 1


def _code_of(exc: BotError) -> str:
    return exc.error if isinstance(exc, TokenRefused) else "key"


def _claim(app: App, at: datetime) -> _Claimed | None:
    table = ChannelCredential
    with app.db.session() as session:
        claimed = session.execute(
            update(table)
            .where(
                col(table.channel) == "twitter",
                col(table.needs_reauth).is_(False),
                col(table.sealed_refresh_token).is_not(None),
                col(table.expires_at).is_not(None),
                col(table.expires_at) <= at + REFRESH_AHEAD,
                or_(
                    col(table.refresh_claimed_at).is_(None),
                    col(table.refresh_claimed_at) < at - CLAIM_FOR,
                ),
            )
            .values(refresh_claimed_at=at)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], claimed).rowcount != 1:
            return None
        stored = find(session, "twitter")
        if stored is None or stored.sealed_refresh_token is None:
            return None
        return _Claimed(version=stored.version, sealed_refresh=stored.sealed_refresh_token)


def _release(app: App, claimed: _Claimed) -> None:
    with app.db.session() as session:
        session.execute(
            update(ChannelCredential)
            .where(
                col(ChannelCredential.channel) == "twitter",
                col(ChannelCredential.version) == claimed.version,
            )
            .values(refresh_claimed_at=None)
        )


def _refused(app: App, claimed: _Claimed, at: datetime, *, problem: str, error: str) -> None:
    """Keep the old token (it may work until it expires) and ask for a reconnection."""
    log.error("channel=twitter needs re-authorisation: %s", problem)
    with app.db.session() as session:
        marked = session.execute(
            update(ChannelCredential)
            .where(
                col(ChannelCredential.channel) == "twitter",
                col(ChannelCredential.version) == claimed.version,
            )
            .values(needs_reauth=True, problem=problem[:500], refresh_claimed_at=None)
        )
        if cast(CursorResult[Any], marked).rowcount == 1:
            audit.record(
                session,
                at=at,
                actor="bot",
                action="channel.refresh_refused",
                entity="channel",
                entity_id="twitter",
                detail={"error": error[:64]},
            )


def _expired_without_refresh(app: App, at: datetime) -> None:
    """A token past its expiry that cannot be renewed needs someone to reconnect."""
    table = ChannelCredential
    with app.db.session() as session:
        marked = session.execute(
            update(table)
            .where(
                col(table.needs_reauth).is_(False),
                col(table.sealed_refresh_token).is_(None),
                col(table.expires_at).is_not(None),
                col(table.expires_at) <= at,
            )
            .values(
                needs_reauth=True,
                problem="the token expired and cannot be renewed (no refresh token): reconnect",
            )
            .returning(col(table.channel))
        )
        for channel in marked.scalars().all():
            audit.record(
                session,
                at=at,
                actor="bot",
                action="channel.token_expired",
                entity="channel",
                entity_id=channel,
                detail={},
            )


# -- Facebook -----------------------------------------------------------------------------
def connect_facebook(app: App, *, page_token: str, username: str) -> ChannelCredential:
    """Check a pasted page access token against ``facebook.page_id``, then store it sealed."""
    try:
        return _connect_facebook(app, page_token=page_token, username=username)
    except ConnectFailed as exc:
        _audit_failure(app, channel="facebook", by=username, reason=exc.reason)
        raise


def _connect_facebook(app: App, *, page_token: str, username: str) -> ChannelCredential:
    settings = app.settings.facebook
    token = page_token.strip()
    if not token:
        raise ConnectFailed("paste the page access token first", reason="empty")
    if not settings.page_id:
        raise ConnectFailed(
            "facebook.page_id is not set: put the page's id in config.yaml first",
            reason="no_page_id",
        )
    sealer = sealer_for(app)
    try:
        sealer.require()
    except CredentialError as exc:
        raise ConnectFailed(str(exc), reason="no_key") from None
    graph = facebook.GraphAPI(access_token=token, timeout=TIMEOUT[1])
    try:
        me = graph.request(f"{settings.graph_version}/me", args={"fields": "id,name"})
    except facebook.GraphAPIError as exc:
        raise ConnectFailed(
            f"Facebook refused this token ({exc.code}: {exc.message}); nothing changed",
            reason="token_refused",
        ) from None
    except (requests.RequestException, KeyError, ValueError):
        raise ConnectFailed(
            "Facebook could not be reached or answered unreadably; nothing changed, try again",
            reason="unreachable",
        ) from None
    page_id = str(me.get("id", "")) if isinstance(me, dict) else ""
    name = str(me.get("name", "")) if isinstance(me, dict) else ""
    if page_id != settings.page_id:
        raise ConnectFailed(
            f"this token is for {name or 'an unnamed account'} (id {page_id or '?'}), not the "
            f"page {settings.page_id} in facebook.page_id: paste that page's access token",
            reason="wrong_page",
        )
    at = app.clock.now()
    with app.db.session() as session:
        stored = save(
            session,
            sealer,
            channel="facebook",
            token=NewToken(access_token=token),
            account_id=page_id,
            account_name=name or None,
            by=username,
            at=at,
        )
        session.expunge(stored)
    return stored


def _audit_failure(app: App, *, channel: str, by: str, reason: str) -> None:
    with app.db.session() as session:
        audit.record(
            session,
            at=app.clock.now(),
            actor=by,
            action="channel.connect_failed",
            entity="channel",
            entity_id=channel,
            detail={"reason": reason},
        )
