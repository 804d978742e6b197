"""Campaign and survey files: one YAML mapping each, validated by a pydantic model.

Every problem names the file, the field and the reason, and a folder reports all of its
files' problems together, so an officer fixes them in one pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bot.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def load_model(path: Path, model: type[M], *, kind: str, key: str, max_bytes: int) -> M:
    """One file as ``model``; the file's stem must equal the model's ``key`` field."""
    if path.stat().st_size > max_bytes:
        raise ConfigError(f"{path.name}: larger than {max_bytes // 1024} KiB")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:  # ValueError: 2026-02-30
        raise ConfigError(f"{path.name}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: expected a mapping of {kind} fields")
    try:
        loaded = model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path.name}: {problems}") from None
    if getattr(loaded, key) != path.stem:
        raise ConfigError(f"{path.name}: {key} {getattr(loaded, key)!r} must match the file name")
    return loaded


def load_folder(folder: Path, load: Callable[[Path], M], *, kind: str) -> list[M]:
    """Every ``*.yaml`` file in the folder; all problems are reported together."""
    if not folder.is_dir():
        raise ConfigError(f"{kind}s folder not found: {folder}")
    loaded, problems = [], []
    for path in sorted(folder.glob("*.yaml")):
        try:
            loaded.append(load(path))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return loaded
