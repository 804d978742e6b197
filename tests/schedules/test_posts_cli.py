"""The comms officer's command line: plan, submit, approve, reject, edit, pause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.schedules.test_campaigns import write


@pytest.fixture
def cli(settings: object, tmp_path: Path) -> Path:
    folder = tmp_path / "campaigns"
    folder.mkdir()
    write(folder, start="2026-11-23", days=28)
    config = tmp_path / "config.yaml"
    config.write_text(f"classifier:\n  kind: keywords\ncampaigns_dir: {folder}\n")
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    for name, role in [("pat", "officer"), ("cara", "comms_officer")]:
        assert main(["--config", str(config), "users", "add", name, "--role", role]) == 0
    return config


def _posts(
    config: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(["--config", str(config), "posts", "list", "--json", *extra]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def test_plan_approve_and_pause_from_the_command_line(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = ["--config", str(cli)]
    assert main([*c, "campaigns", "validate"]) == 0
    assert "1 campaign(s) valid" in capsys.readouterr().out
    assert (
        main([*c, "campaigns", "plan", "--from", "2026-11-23", "--days", "7", "--by", "pat"]) == 0
    )
    assert "planned 6 draft post(s)" in capsys.readouterr().out
    assert main([*c, "campaigns", "plan", "--from", "2026-11-23", "--days", "7"]) == 0
    assert "planned 0 draft post(s); 6 already planned" in capsys.readouterr().out
    drafts = _posts(cli, capsys)
    first, second = int(drafts[0]["id"]), int(drafts[1]["id"])  # type: ignore[call-overload]
    assert main([*c, "posts", "submit", str(first), str(second), "--by", "pat"]) == 0
    assert main([*c, "posts", "approve", str(first), "--by", "pat"]) == 1
    assert "nobody approves their own post" in capsys.readouterr().err
    assert main([*c, "posts", "approve", str(first), "--by", "cara"]) == 0
    assert (
        main(
            [
                *c,
                "posts",
                "reject",
                str(second),
                "--by",
                "cara",
                "--note",
                "say where the bike marking is",
            ]
        )
        == 0
    )
    assert [p["id"] for p in _posts(cli, capsys, "--status", "approved")] == [first]
    assert (
        main([*c, "posts", "edit", str(first), "--by", "pat", "--text", "Lock it or lose it"]) == 0
    )
    assert _posts(cli, capsys, "--status", "approved") == []
    assert main([*c, "posts", "show", str(second)]) == 0
    assert "note: say where the bike marking is" in capsys.readouterr().out
    assert main([*c, "posts", "pause-all", "--by", "cara", "--reason", "incident on campus"]) == 0
    assert main([*c, "posts", "resume", "--by", "cara"]) == 0
    assert main([*c, "posts", "list", "--status", "bogus"]) == 2
    assert main([*c, "audit", "verify"]) == 0


def test_plan_reports_unknown_campaign_and_bad_dates(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = ["--config", str(cli)]
    assert main([*c, "campaigns", "plan", "--days", "7", "--campaign", "nope"]) == 2
    assert main([*c, "campaigns", "plan", "--days", "7", "--from", "23/11/2026"]) == 2
    assert main([*c, "users", "add", "x", "--role", "wizard"]) == 1
    assert "unknown role wizard" in capsys.readouterr().err
