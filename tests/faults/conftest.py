"""Fixtures for the fault tests."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.private_postgres import PrivateCluster, free_port
from tests.faults.private_postgres import bin_dir as private_postgres_bin


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    bin_dir = private_postgres_bin()
    if bin_dir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are missing under CI")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="campusbot-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(folder / "data"), "-A", "trust",
         "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )  # fmt: skip
    cluster = PrivateCluster(bin_dir, folder, free_port(), as_user)
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already down
            cluster.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
