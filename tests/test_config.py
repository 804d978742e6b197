"""Configuration: YAML for shared settings, environment for secrets, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import load_settings
from bot.errors import ConfigError


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(body)
    return path


def test_defaults_are_safe(settings: object) -> None:
    loaded = load_settings()
    assert loaded.database_url == "sqlite:///./var/campusbot.db"
    assert loaded.timezone == "Europe/London"
    assert (loaded.sla.p1_minutes, loaded.sla.p2_minutes) == (15, 60)
    assert not any(c.enabled for c in loaded.channels().values())


def test_environment_overrides_yaml_with_nesting(
    settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(
        tmp_path, "twitter:\n  enabled: true\n  user_id: '123'\nsla:\n  p1_minutes: 10\n"
    )
    monkeypatch.setenv("CAMPUSBOT_TWITTER__BEARER_TOKEN", "AAAA-real-token")
    monkeypatch.setenv("CAMPUSBOT_SLA__P1_MINUTES", "5")
    monkeypatch.setenv("CAMPUSBOT_DATABASE_URL", "postgresql+psycopg://bot@db/campus")
    loaded = load_settings(path)
    assert loaded.twitter.enabled and loaded.twitter.user_id == "123"
    assert loaded.twitter.bearer_token is not None
    assert loaded.twitter.bearer_token.get_secret_value() == "AAAA-real-token"
    assert loaded.sla.p1_minutes == 5
    assert loaded.database_url.startswith("postgresql+psycopg://")


def test_secrets_in_yaml_are_refused(settings: object, tmp_path: Path) -> None:
    path = _config(tmp_path, "facebook:\n  app_secret: abc123\n")
    with pytest.raises(ConfigError, match=r"facebook\.app_secret"):
        load_settings(path)


def test_invalid_values_name_the_field(settings: object, tmp_path: Path) -> None:
    path = _config(tmp_path, "sla:\n  p1_minutes: soon\ntimezone: Mars/Olympus\nbogus: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "sla.p1_minutes" in message and "timezone" in message and "bogus" in message


def test_placeholder_secret_is_refused_for_enabled_channel(
    settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(tmp_path, "facebook:\n  enabled: true\n  page_id: '42'\n")
    monkeypatch.setenv("CAMPUSBOT_FACEBOOK__APP_SECRET", "changeme")
    with pytest.raises(ConfigError, match="placeholder"):
        load_settings(path)


def test_config_check_lists_missing_without_printing_secrets(
    settings: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _config(tmp_path, "twitter:\n  enabled: true\n  user_id: '1'\n")
    monkeypatch.setenv("CAMPUSBOT_TWITTER__BEARER_TOKEN", "super-secret-value")
    code = main(["--config", str(path), "config", "check"])
    output = capsys.readouterr().out
    assert code == 1
    assert "twitter: enabled, MISSING consumer_key" in output
    assert "CAMPUSBOT_TWITTER__ACCESS_TOKEN_SECRET" in output
    assert "super-secret-value" not in output
    assert "facebook: disabled" in output


def test_invalid_config_stops_the_cli_with_exit_2(
    settings: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, "sla:\n  p2_minutes: -3\n")
    assert main(["--config", str(path), "inbox", "list"]) == 2
    assert "sla.p2_minutes" in capsys.readouterr().err


def test_missing_config_file_is_an_error(settings: object, tmp_path: Path) -> None:
    assert main(["--config", str(tmp_path / "nope.yaml"), "config", "check"]) == 2
