"""Settings: config.yaml for what may be shared, the environment (or .env) for secrets.

Precedence, highest first: explicit overrides, ``CAMPUSBOT_*`` environment variables
(``__`` for nesting), ``.env``, ``config.yaml``, defaults. A secret written into
config.yaml is refused outright, because that file is committed and copied around.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from bot.errors import ConfigError
from bot.paths import ROOT

DEFAULT_CONFIG = Path("config.yaml")
_config_path: ContextVar[Path | None] = ContextVar("campusbot_config_path", default=None)

PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "xxx", "todo", "your-token-here"}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelSettings(Section):
    """What every channel account shares; subclasses name their required secrets."""

    enabled: bool = False
    poll_interval_seconds: int = Field(default=60, ge=15, le=3600)
    required_secrets: ClassVar[tuple[str, ...]] = ()
    required_fields: ClassVar[tuple[str, ...]] = ()

    def missing(self) -> list[str]:
        """Names of required settings that are unset (never their values)."""
        gaps: list[str] = []
        for name in (*self.required_fields, *self.required_secrets):
            value = getattr(self, name)
            if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
                gaps.append(name)
        return gaps


class XCostSettings(Section):
    """X's pay-per-use prices in US dollars, for the call ledger, and the monthly budget.

    Reads are billed per item returned, writes per request, and a post with a link costs far
    more. X changes its prices: copy the current ones from its developer console. When this
    month's estimated spend reaches ``monthly_budget``, campaign posts and history backfills
    stop; polling of mentions and DMs and replies to students never do.
    """

    post_read: float = Field(default=0.005, ge=0)  # per post returned
    user_read: float = Field(default=0.010, ge=0)  # per user returned
    dm_read: float = Field(default=0.010, ge=0)  # per DM event returned
    write: float = Field(default=0.015, ge=0)  # a post, reply or DM sent
    write_with_url: float = Field(default=0.200, ge=0)  # a post or reply with a link in it
    media_upload: float = Field(default=0.0, ge=0)  # upload calls are not on X's price list
    monthly_budget: float | None = Field(default=None, ge=0)  # None: no budget


class TwitterSettings(ChannelSettings):
    account_handle: str = "UCLanCampusCops"
    cost: XCostSettings = XCostSettings()
    user_id: str | None = None
    bearer_token: SecretStr | None = None
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None
    # OAuth 2.0 app credentials, for an admin to connect the account in the console
    client_id: str | None = None
    client_secret: SecretStr | None = None  # confidential clients only
    required_fields: ClassVar[tuple[str, ...]] = ("user_id",)
    required_secrets: ClassVar[tuple[str, ...]] = (
        "bearer_token",
        "consumer_key",
        "consumer_secret",
        "access_token",
        "access_token_secret",
    )


class FacebookSettings(ChannelSettings):
    page_id: str | None = None
    graph_version: str = Field(default="v25.0", pattern=r"^v\d+\.\d+$")
    page_access_token: SecretStr | None = None
    app_secret: SecretStr | None = None
    verify_token: SecretStr | None = None
    # Polling fallback for comments (webhooks are the main path). The cursor keeps one time
    # per watched post in a 1,024-character column, hence at most 25 posts.
    poll_recent_posts: int = Field(default=10, ge=1, le=25)
    poll_lookback_hours: int = Field(default=24, ge=1, le=7 * 24)  # the very first round
    # Insights: Graph metric name -> the name reports read. Meta renames metrics: change the
    # key and the stored name, and so every report, stays the same.
    page_metrics: dict[str, str] = Field(
        default_factory=lambda: {
            "page_media_view": "views",
            "page_total_media_view_unique": "reach",
            "page_post_engagements": "engagements",
            "page_follows": "followers",
        }
    )
    post_metrics: dict[str, str] = Field(
        default_factory=lambda: {
            "post_media_view": "views",
            "post_reactions_by_type_total": "reactions",
            "post_clicks": "clicks",
        }
    )
    insights_days: int = Field(default=7, ge=1, le=90)  # Graph allows 93 days per request
    post_insights_days: int = Field(default=28, ge=1, le=365)  # posts younger than this
    required_fields: ClassVar[tuple[str, ...]] = ("page_id",)
    required_secrets: ClassVar[tuple[str, ...]] = (
        "page_access_token",
        "app_secret",
        "verify_token",
    )

    @field_validator("page_metrics", "post_metrics")
    @classmethod
    def _metric_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [
            name
            for pair in value.items()
            for name in pair
            if not (name.isascii() and name.isidentifier() and name.islower())
            or not name[0].isalpha()
            or len(name) > 64
        ]
        if bad:
            raise ValueError(f"metric names are lower_snake_case, at most 64 characters: {bad}")
        if len(set(value.values())) != len(value):
            raise ValueError("two Graph metrics are stored under the same name")
        return value


class InTheKnowSettings(ChannelSettings):
    """The alert feed, the mailbox members reply to, and the optional signed push contract.

    ``imap_security``: ``tls`` (IMAPS, port 993), ``starttls`` (port 143, upgraded before
    the login) or ``plain`` - a password in clear, so only to a mailbox on this machine.
    """

    feed_url: str | None = None
    imap_security: Literal["tls", "starttls", "plain"] = "tls"
    imap_host: str | None = None
    imap_port: int | None = Field(default=None, ge=1, le=65535)  # None: 993 or 143
    imap_ca_file: Path | None = None  # a private CA that signed the mail server's certificate
    imap_user: str | None = None
    imap_password: SecretStr | None = None
    mailbox: str = Field(default="INBOX", pattern=r"^[\x20-\x7e]{1,200}$")
    # Stored emails are moved here; unset, they are only flagged \Seen where they are.
    imap_processed_mailbox: str | None = Field(default=None, pattern=r"^[\x20-\x7e]{1,200}$")
    contract_url: str | None = None
    contract_key: SecretStr | None = None
    required_fields: ClassVar[tuple[str, ...]] = ("feed_url", "imap_host", "imap_user")
    required_secrets: ClassVar[tuple[str, ...]] = ("imap_password",)

    @property
    def imap_port_number(self) -> int:
        return self.imap_port or (993 if self.imap_security == "tls" else 143)

    @field_validator("imap_host")
    @classmethod
    def _plain_only_on_loopback(cls, value: str | None, info: Any) -> str | None:
        import ipaddress

        if value is None or info.data.get("imap_security") != "plain" or value == "localhost":
            return value
        try:
            loopback = ipaddress.ip_address(value.strip("[]")).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                "imap_security 'plain' would send the password unencrypted; it is allowed only "
                "for a mailbox on this machine (127.0.0.1, ::1, localhost): use tls or starttls"
            )
        return value

    @field_validator("imap_ca_file")
    @classmethod
    def _ca_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("contract_key")
    @classmethod
    def _long_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and 0 < len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return value


class SLASettings(Section):
    """Time to the first human reply, per priority."""

    p1_minutes: int = Field(default=15, ge=1)
    p2_minutes: int = Field(default=60, ge=1)
    p3_minutes: int = Field(default=8 * 60, ge=1)
    p4_minutes: int = Field(default=3 * 24 * 60, ge=1)

    def due_after(self, priority: str) -> timedelta:
        minutes: int = getattr(self, f"{priority.lower()}_minutes")
        return timedelta(minutes=minutes)


class RetentionSettings(Section):
    """How long each kind of personal data is kept, in days."""

    messages_days: int = Field(default=365, ge=1)
    raw_payloads_days: int = Field(default=30, ge=1)
    dead_letters_days: int = Field(default=90, ge=1)
    audit_days: int = Field(default=6 * 365, ge=1)


class ClassifierSettings(Section):
    kind: Literal["spacy", "keywords"] = "spacy"
    model_path: Path | None = None


class ApprovalSettings(Section):
    """Who must approve a post before it goes out, per channel, in order (at most 3 tiers).

    Each tier lists roles (``comms_officer``) or named people (``user:sgt.hughes``); anyone
    matching one entry may approve that tier. Nobody approves their own post, and nobody
    approves two tiers of the same post.
    """

    tiers: dict[str, list[list[str]]] = Field(
        default_factory=lambda: {"default": [["comms_officer", "admin"]]}
    )
    expire_grace_minutes: int = Field(default=120, ge=0, le=24 * 60)

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, value: dict[str, list[list[str]]]) -> dict[str, list[list[str]]]:
        if "default" not in value:
            raise ValueError("needs a 'default' entry")
        for channel, tiers in value.items():
            if not 1 <= len(tiers) <= 3:
                raise ValueError(f"{channel}: between 1 and 3 tiers")
            if any(not tier for tier in tiers):
                raise ValueError(f"{channel}: a tier must name at least one role or user")
        return value

    def tiers_for(self, channel: str) -> list[list[str]]:
        return self.tiers.get(channel, self.tiers["default"])


class WebSettings(Section):
    """The console: who may reach it, and how long a sign-in lasts."""

    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "[::1]", "::1"]
    )
    secure_cookies: bool = False  # set true behind HTTPS
    idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    max_failed_sign_ins: int = Field(default=5, ge=1, le=100)
    throttle_minutes: int = Field(default=15, ge=1, le=24 * 60)
    require_totp_for_admins: bool = False  # admins set up a second factor at their next sign-in


class MediaSettings(Section):
    """Photos and videos students send: where the originals are kept, and how large they may be.

    Limits are per kind and are enforced while an upload streams in, so an oversized file
    is refused after reading just past its limit. Only the local folder backend (under
    ``var_dir``) exists; naming any other is refused here rather than failing on first use.
    """

    backend: str = "local"
    max_image_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_video_bytes: int = Field(default=500 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=64_000_000, ge=1)  # a 48 MP phone photo fits

    @field_validator("backend")
    @classmethod
    def _implemented_backend(cls, value: str) -> str:
        if value != "local":
            raise ValueError(
                f"storage backend {value!r} is not implemented; the only one is 'local' "
                "(a folder under var_dir)"
            )
        return value


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _monday_to_friday() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


class OfficeHoursSettings(Section):
    """When the campus team is on duty, in the bot's ``timezone`` (Europe/London).

    Outside these hours (and all day on a listed bank holiday) alerts go to the control room.
    """

    days: list[Weekday] = Field(default_factory=_monday_to_friday, min_length=1)
    start: time = time(8, 0)
    end: time = time(18, 0)
    bank_holidays: list[date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _start_before_end(self) -> OfficeHoursSettings:
        if self.start >= self.end:
            raise ValueError("office_hours.start must be before office_hours.end")
        return self


_EMAIL_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]\\]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


def _email_address(value: str) -> str:
    if not _EMAIL_ADDRESS.match(value):
        raise ValueError(f"not an email address: {value!r}")
    return value


EmailAddress = Annotated[str, AfterValidator(_email_address)]


class SmtpSettings(Section):
    """The one mail server the bot sends through: alerts, partner reports, In The Know replies.

    ``security``: ``starttls`` (port 587), ``tls`` (port 465) or ``plain`` (port 25: a relay
    that takes no password, or one on this machine). The password comes from the environment
    only (CAMPUSBOT_SMTP__PASSWORD). A bot that sends no email needs none of this, so each
    sender asks ``missing()`` when it needs the server rather than the settings insisting.
    """

    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)  # None: by security
    security: Literal["starttls", "tls", "plain"] = "starttls"
    ca_file: Path | None = None  # a private CA that signed the mail server's certificate
    user: str | None = None
    password: SecretStr | None = None
    timeout_seconds: int = Field(default=30, ge=1, le=300)
    # the sender of every email (partners may override it)
    from_address: EmailAddress | None = None

    @property
    def port_number(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "plain": 25}[self.security]

    def missing(self) -> list[str]:
        """What must still be set before any email can leave, named as an operator sets it."""
        gaps = [f"smtp.{name}" for name in ("host", "from_address") if not getattr(self, name)]
        if self.user and not (self.password and self.password.get_secret_value()):
            gaps.append("smtp.password (environment: CAMPUSBOT_SMTP__PASSWORD)")
        return gaps

    @field_validator("ca_file")
    @classmethod
    def _ca_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> SmtpSettings:
        if self.security == "plain" and self.user and self.host and not _loopback(self.host):
            raise ValueError(
                "security 'plain' with a user would send the password unencrypted; "
                "use starttls or tls, or a relay on this machine"
            )
        return self


# Where each mail server setting that used to live under ``alerts`` went.
_MOVED_TO_SMTP = {
    "smtp_host": "host",
    "smtp_port": "port",
    "smtp_security": "security",
    "smtp_ca_file": "ca_file",
    "smtp_user": "user",
    "smtp_password": (
        "password: rename CAMPUSBOT_ALERTS__SMTP_PASSWORD to CAMPUSBOT_SMTP__PASSWORD"
    ),
    "smtp_timeout_seconds": "timeout_seconds",
    "from_address": "from_address",
}


class AlertSettings(Section):
    """Who hears about P1/P2 cases and overdue ones.

    Alerts always appear in the console. With ``email: true`` they are also emailed, through
    the mail server under ``smtp``: in office hours to ``on_duty``, out of hours to
    ``control_room``.
    """

    email: bool = False
    on_duty: list[str] = Field(default_factory=list)  # the officers' or the team's addresses
    control_room: EmailAddress | None = None
    office_hours: OfficeHoursSettings = OfficeHoursSettings()
    max_attempts: int = Field(default=12, ge=1, le=100)  # then failed, kept, shown

    @model_validator(mode="before")
    @classmethod
    def _mail_server_moved(cls, data: Any) -> Any:
        """An older config.yaml or environment names the new setting instead of just failing."""
        if isinstance(data, dict):
            moved = [
                f"alerts.{old} is now smtp.{new}"
                for old, new in _MOVED_TO_SMTP.items()
                if old in data
            ]
            if moved:
                raise ValueError(
                    "the mail server has its own section, smtp, shared by every email the bot "
                    "sends: " + "; ".join(moved)
                )
        return data

    @field_validator("on_duty")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [address for address in value if not _EMAIL_ADDRESS.match(address)]
        if bad:
            raise ValueError(f"not email addresses: {bad}")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _complete_when_emailing(self) -> AlertSettings:
        gaps = [name for name in ("control_room", "on_duty") if not getattr(self, name)]
        if self.email and gaps:
            raise ValueError("email alerts need " + ", ".join(gaps))
        return self


def _loopback(host: str | None) -> bool:
    import ipaddress

    if host is None or host == "localhost":
        return host is not None
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


PartnerField = Literal[
    "scenarios", "reported_at", "priority", "status", "channel", "summary", "attachments"
]
HandlingCode = Literal["P", "C"]


def _sharing_permitted() -> list[HandlingCode]:
    return ["P"]


class PartnerAgency(Section):
    """One partner and what its information sharing agreement lets the police send it.

    ``scenarios``: the kinds of case the agreement covers; a case with none of them is
    refused. ``fields``: what of a case may leave (the case reference and, for intelligence,
    its 3x5x2 grading always go). ``handling``: the 3x5x2 handling codes it may receive;
    an empty list means facts only, never intelligence. ``email`` stays null until the
    agreement names the mailbox, and nothing is sent to it until then.
    """

    name: str = Field(min_length=3, max_length=200)
    agreement: str = Field(min_length=3, max_length=300)  # the signed agreement's reference
    email: EmailAddress | None = None
    scenarios: list[str] = Field(min_length=1)
    fields: list[PartnerField] = Field(min_length=1)
    handling: list[HandlingCode] = Field(default_factory=_sharing_permitted)

    @field_validator("scenarios")
    @classmethod
    def _known_scenarios(cls, value: list[str]) -> list[str]:
        from classifiers.base import SCENARIOS

        unknown = [s for s in value if s not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
        return list(dict.fromkeys(value))


class PartnerSettings(Section):
    """Partner agencies, by the short name officers type (``campusbot partners send --agency``).

    Reports go through the mail server under ``smtp``, from ``from_address`` (default:
    smtp.from_address), marked with the Government Security Classification ``marking``.
    """

    from_address: EmailAddress | None = None
    marking: str = Field(default="OFFICIAL-SENSITIVE", min_length=3, max_length=60)
    agencies: dict[str, PartnerAgency] = Field(default_factory=dict)

    @field_validator("agencies")
    @classmethod
    def _short_names(cls, value: dict[str, PartnerAgency]) -> dict[str, PartnerAgency]:
        bad = [key for key in value if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,39}", key)]
        if bad:
            raise ValueError(f"agency names are lower-case-with-hyphens, 2-40 characters: {bad}")
        return value


class AccountSettings(Section):
    """Who the bot speaks for, and the numbers it gives out."""

    force_name: str = "Lancashire Constabulary"
    team_name: str = "UCLan Campus Police"
    online_report_url: str = "https://www.lancashire.police.uk/ro/report/"
    support_line: str = "Samaritans on 116 123"
    # Given with reports of sexual offences and to young people; correct them here when a
    # service changes (the report templates must then be approved again).
    sarc: str = (
        "the Lancashire SAFE Centre, the Sexual Assault Referral Centre at Royal Preston "
        "Hospital: 01772 523344 (Mon-Fri 8am-4pm) or 01772 716565 (any other time)"
    )
    sexual_violence_support: str = (
        "the Rape Crisis 24/7 Support Line for anyone 16 or over: 247sexualabusesupport.org.uk"
    )
    young_person_support: str = "Childline on 0800 1111 (free, any time)"


class ReportSettings(Section):
    """Reports students file by DM, Messenger or the /report web form.

    A conversation idle for ``idle_hours`` is filed with what it has; Messenger lets an
    automatic reply out only within 24 hours of the student's last message, hence the cap.
    ``secret_key`` (environment only, CAMPUSBOT_REPORTS__SECRET_KEY) signs the web forms and
    derives each report's code; unset, a key is generated once under ``var_dir/keys``, which
    the web server and the worker must then share.
    """

    idle_hours: float = Field(default=6, gt=0, le=23)
    max_files: int = Field(default=5, ge=0, le=20)
    max_field_chars: int = Field(default=5000, ge=200, le=20_000)
    form_minutes: int = Field(default=120, ge=5, le=24 * 60)
    download_attempts: int = Field(default=12, ge=1, le=100)
    download_timeout_seconds: int = Field(default=120, ge=5, le=3600)
    secret_key: SecretStr | None = None

    @field_validator("secret_key")
    @classmethod
    def _long_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and 0 < len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CAMPUSBOT_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        validate_default=True,
    )

    database_url: str = "sqlite:///./var/campusbot.db"
    var_dir: Path = Path("var")
    timezone: str = "Europe/London"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for services
    metrics_token: SecretStr | None = None  # lets a remote Prometheus read /metrics (env only)
    # Fernet key sealing stored channel tokens and TOTP secrets (env only:
    # CAMPUSBOT_CREDENTIALS_KEY; `campusbot credentials new-key` makes one)
    credentials_key: SecretStr | None = None
    max_text_chars: int = Field(default=10_000, ge=280, le=100_000)
    account: AccountSettings = AccountSettings()
    twitter: TwitterSettings = TwitterSettings()
    facebook: FacebookSettings = FacebookSettings()
    in_the_know: InTheKnowSettings = InTheKnowSettings()
    classifier: ClassifierSettings = ClassifierSettings()
    sla: SLASettings = SLASettings()
    retention: RetentionSettings = RetentionSettings()
    campaigns_dir: Path = ROOT / "schedules" / "campaigns"  # the bundled campaigns
    surveys_dir: Path = ROOT / "schedules" / "surveys"  # the bundled surveys
    approval: ApprovalSettings = ApprovalSettings()
    web: WebSettings = WebSettings()
    media: MediaSettings = MediaSettings()
    smtp: SmtpSettings = SmtpSettings()
    alerts: AlertSettings = AlertSettings()
    reports: ReportSettings = ReportSettings()
    partners: PartnerSettings = PartnerSettings()
    public_base_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^\s/]+")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql+psycopg://")):
            raise ValueError("use sqlite:///path or postgresql+psycopg://user@host/db")
        return value

    @model_validator(mode="after")
    def _mail_server_for_alerts(self) -> Settings:
        gaps = self.smtp.missing()
        if self.alerts.email and gaps:
            raise ValueError("email alerts need " + ", ".join(gaps))
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def channels(self) -> dict[str, ChannelSettings]:
        return {"twitter": self.twitter, "facebook": self.facebook, "in_the_know": self.in_the_know}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_path.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        if path is not None:
            sources.append(SecretFreeYamlSource(settings_cls, yaml_file=path))
        return tuple(sources)


class SecretFreeYamlSource(YamlConfigSettingsSource):
    """Reads config.yaml and refuses it if any secret field has a value there."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        leaked = sorted(_secret_paths(Settings, data))
        if leaked:
            raise ConfigError(
                "config.yaml must not hold secrets; move these to the environment or .env "
                f"(e.g. CAMPUSBOT_{leaked[0].upper().replace('.', '__')}): " + ", ".join(leaked)
            )
        return data


def _secret_paths(model: type[BaseModel], data: Any, prefix: str = "") -> Iterator[str]:
    if not isinstance(data, dict):
        return
    for name, field in model.model_fields.items():
        if name not in data or data[name] in (None, ""):
            continue
        annotation = field.annotation
        dotted = f"{prefix}{name}"
        if annotation is not None and "SecretStr" in repr(annotation):
            yield dotted
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _secret_paths(annotation, data[name], dotted + ".")


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Load and validate settings, turning any problem into a ConfigError naming the field."""
    path = config or Path(os.environ.get("CAMPUSBOT_CONFIG", str(DEFAULT_CONFIG)))
    if config is not None and not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if path.exists():
        _check_yaml(path)
    token = _config_path.set(path if path.exists() else None)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    finally:
        _config_path.reset(token)
    _refuse_placeholder_secrets(settings)
    return settings


def _check_yaml(path: Path) -> None:
    """Refuse a file that is not a YAML mapping, naming the problem, before settings read it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, found {type(data).__name__}")


def describe_validation_error(exc: ValidationError) -> str:
    lines = ["invalid configuration (config.yaml or CAMPUSBOT_* environment):"]
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(root)"
        lines.append(f"  {field}: {error['msg']}")
    return "\n".join(lines)


def _refuse_placeholder_secrets(settings: Settings) -> None:
    for channel_name, channel in settings.channels().items():
        if not channel.enabled:
            continue
        for name in channel.required_secrets:
            value = getattr(channel, name)
            if isinstance(value, SecretStr) and value.get_secret_value().lower() in (
                PLACEHOLDER_SECRETS
            ):
                raise ConfigError(
                    f"{channel_name}.{name} is a placeholder; set the real value in the environment"
                )
