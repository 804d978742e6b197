"""Evidence packages: one stored original and a manifest, in a zip an officer can hand on.

The original goes in byte for byte and is hashed on the way in; if the hash no longer
matches the one recorded on receipt the export is refused, because a package whose
contents differ from what the student sent is worse than none. The zip is written beside
its final name and renamed into place, so a half-written package is never left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from bot.media.errors import MediaError

MANIFEST = "manifest.json"
FORMAT = "campusbot-evidence/1"
COPY_CHUNK = 1 << 20


def write_package(
    dest: Path, *, original: BinaryIO, inner_name: str, sha256: str, manifest: dict[str, Any]
) -> None:
    """Write ``dest`` (a .zip) holding ``inner_name`` (the original) and the manifest."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=".evidence-", suffix=".zip")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as package:
            digest = hashlib.sha256()
            # already-compressed media: stored, not deflated; zip64 in case it is large
            with package.open(inner_name, "w", force_zip64=True) as entry:
                while chunk := original.read(COPY_CHUNK):
                    digest.update(chunk)
                    entry.write(chunk)
            if digest.hexdigest() != sha256:
                raise MediaError(
                    f"the stored file no longer matches its sha256 {sha256} "
                    f"(it hashes to {digest.hexdigest()}); not exported"
                )
            body = {"format": FORMAT, "file": inner_name, **manifest, "sha256_verified": True}
            package.writestr(
                MANIFEST, json.dumps(body, indent=2, sort_keys=True) + "\n", zipfile.ZIP_DEFLATED
            )
        os.replace(temp, dest)
    except OSError as exc:
        raise MediaError(f"could not write the evidence package {dest}: {exc}") from exc
    finally:
        temp.unlink(missing_ok=True)
