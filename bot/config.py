"""Settings: config.yaml for what may be shared, the environment (or .env) for secrets.

Precedence, highest first: explicit overrides, ``CAMPUSBOT_*`` environment variables
(``__`` for nesting), ``.env``, ``config.yaml``, defaults. A secret written into
config.yaml is refused outright, because that file is committed and copied around.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
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


class TwitterSettings(ChannelSettings):
    account_handle: str = "UCLanCampusCops"
    user_id: str | None = None
    bearer_token: SecretStr | None = None
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None
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
    required_fields: ClassVar[tuple[str, ...]] = ("page_id",)
    required_secrets: ClassVar[tuple[str, ...]] = (
        "page_access_token",
        "app_secret",
        "verify_token",
    )


class InTheKnowSettings(ChannelSettings):
    feed_url: str | None = None
    imap_host: str | None = None
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_user: str | None = None
    imap_password: SecretStr | None = None
    mailbox: str = "INBOX"
    contract_url: str | None = None
    contract_key: SecretStr | None = None
    required_fields: ClassVar[tuple[str, ...]] = ("feed_url", "imap_host", "imap_user")
    required_secrets: ClassVar[tuple[str, ...]] = ("imap_password",)


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


class AccountSettings(Section):
    """Who the bot speaks for, and the numbers it gives out."""

    force_name: str = "Lancashire Constabulary"
    team_name: str = "UCLan Campus Police"
    online_report_url: str = "https://www.lancashire.police.uk/ro/report/"
    support_line: str = "Samaritans on 116 123"


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
    max_text_chars: int = Field(default=10_000, ge=280, le=100_000)
    account: AccountSettings = AccountSettings()
    twitter: TwitterSettings = TwitterSettings()
    facebook: FacebookSettings = FacebookSettings()
    in_the_know: InTheKnowSettings = InTheKnowSettings()
    classifier: ClassifierSettings = ClassifierSettings()
    sla: SLASettings = SLASettings()
    retention: RetentionSettings = RetentionSettings()
    campaigns_dir: Path = ROOT / "schedules" / "campaigns"  # the bundled campaigns
    approval: ApprovalSettings = ApprovalSettings()
    web: WebSettings = WebSettings()
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
    token = _config_path.set(path if path.exists() else None)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    finally:
        _config_path.reset(token)
    _refuse_placeholder_secrets(settings)
    return settings


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
