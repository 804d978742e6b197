"""Jinja2 rendering for messages and pages, sandboxed and strict.

Templates are edited by comms staff, so they render in a sandbox (no attribute access to
Python internals) and any undefined variable is an error rather than an empty string in a
message to a student.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@lru_cache(maxsize=4)
def text_environment(root: Path = TEMPLATES_DIR) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(root),
        undefined=StrictUndefined,
        autoescape=False,  # plain-text messages; HTML pages use the web environment
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=4)
def html_environment(root: Path = TEMPLATES_DIR) -> SandboxedEnvironment:
    """For HTML documents: the same sandbox, with every value escaped."""
    return SandboxedEnvironment(
        loader=FileSystemLoader(root),
        undefined=StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_text(name: str, *, root: Path = TEMPLATES_DIR, **context: Any) -> str:
    """Render a message template and tidy the whitespace a block template leaves.

    Raises ``jinja2.UndefinedError`` for a missing variable and
    ``jinja2.exceptions.SecurityError`` for anything the sandbox forbids.
    """
    rendered = text_environment(root).get_template(name).render(**context)
    paragraphs = [" ".join(p.split()) for p in rendered.split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def template_sha256(
    name: str, variables: Mapping[str, str] | None = None, root: Path = TEMPLATES_DIR
) -> str:
    """Fingerprint of what a reader will see: the template's source and the configured values
    it fills in (team name, support line...). An approval covers exactly this wording."""
    digest = hashlib.sha256((root / name).read_bytes())
    digest.update(json.dumps(dict(variables or {}), sort_keys=True).encode())
    return digest.hexdigest()
