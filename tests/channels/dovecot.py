"""A private Dovecot IMAP server for the In The Know tests.

Each server lives in its own temporary folder - configuration, passwd-file, maildir, logs,
sockets, a self-signed certificate made with openssl - listens on free loopback ports
(143-style with STARTTLS, and IMAPS) and is stopped at teardown. Nothing of the machine's
own Dovecot is used. As root the mail files belong to ``nobody`` (Dovecot refuses to
give root access to mail); as anyone else, everything runs as that user.
"""

from __future__ import annotations

import grp
import imaplib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.config import InTheKnowSettings

DOVECOT = "/usr/sbin/dovecot"
USER = "itk-replies"
PASSWORD = "Wr1ting-Tests-Is-Fun-9d2c"  # only ever in this temporary passwd-file
_deliveries = itertools.count(1)


def require(program: str, package: str) -> str:
    """The program's path; outside CI a missing one skips, under CI=true it fails."""
    path = shutil.which(program) or (program if Path(program).is_file() else None)
    if path is not None:
        return path
    reason = (
        f"{program} is not installed: the real IMAP tests need Debian's {package} "
        "(bash scripts/system-deps installs it)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run them")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Dovecot:
    root: Path
    imap_port: int
    imaps_port: int
    mail_uid: int
    mail_gid: int
    process: subprocess.Popen[bytes] | None = None
    extra_config: str = ""
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "dovecot.log"

    @property
    def cert(self) -> Path:
        """The server's self-signed certificate, which is also the CA file to trust."""
        return self.root / "tls" / "cert.pem"

    def folder(self, name: str = "INBOX") -> Path:
        home = self.root / "mail" / USER
        return home if name == "INBOX" else home / f".{name}"

    # -- setting up ------------------------------------------------------------------------
    def write_config(self, dovecot_user: str) -> Path:
        me = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        as_root = os.geteuid() == 0
        # Not root: no chroot, and every service runs as this user and group.
        unprivileged = (
            ""
            if as_root
            else f"default_internal_user = {me}\ndefault_internal_group = {group}\n"
            f"default_login_user = {me}\n"
        )
        login_chroot = anvil_chroot = "" if as_root else "  chroot =\n"
        (self.root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        config = self.root / "dovecot.conf"
        config.write_text(
            f"""# Written by tests/channels/dovecot.py for one test; {dovecot_user} runs it.
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.root}/tls/cert.pem
ssl_key = <{self.root}/tls/key.pem
ssl_min_protocol = TLSv1.2
# Plaintext LOGIN allowed: the plain-on-loopback mode is tested too.
disable_plaintext_auth = no
auth_mechanisms = plain login
# Wrong-password tests need not wait: no failure delay and no growing penalty.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
{anvil_chroot}}}
mail_location = maildir:{self.root}/mail/%u
mail_uid = {self.mail_uid}
mail_gid = {self.mail_gid}
first_valid_uid = {self.mail_uid}
last_valid_uid = {self.mail_uid}
first_valid_gid = {self.mail_gid}
last_valid_gid = {self.mail_gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.root}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
{login_chroot}}}
{unprivileged}{self.extra_config}
"""
        )
        return config

    def make_certificate(self, openssl: str) -> None:
        tls = self.root / "tls"
        tls.mkdir()
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout",
                str(tls / "key.pem"),
                "-out",
                str(tls / "cert.pem"),
            ],
            check=True,
            capture_output=True,
        )

    def make_folder(self, name: str = "INBOX") -> Path:
        path = self.folder(name)
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        if name != "INBOX":
            (path / "maildirfolder").touch()
        for dirpath, _, files in os.walk(self.root / "mail"):
            os.chown(dirpath, self.mail_uid, self.mail_gid)
            for name_ in files:
                os.chown(os.path.join(dirpath, name_), self.mail_uid, self.mail_gid)
        return path

    def deliver(self, raw: bytes, folder: str = "INBOX") -> Path:
        """Deliver as a mail delivery agent does: write into tmp/, then rename into new/."""
        box = self.make_folder(folder)
        unique = f"{time.time_ns()}.M{next(_deliveries)}P{os.getpid()}.campusbot-tests,S={len(raw)}"
        staged = box / "tmp" / unique
        staged.write_bytes(raw)
        os.chown(staged, self.mail_uid, self.mail_gid)
        delivered = box / "new" / unique
        staged.rename(delivered)
        return delivered

    def locate(self, delivered: Path) -> Path:
        """Where a delivered email is now: Dovecot moves it to cur/ and adds its flags."""
        unique = delivered.name
        for path in (*delivered.parent.parent.glob("cur/*"), delivered):
            if path.name.split(":")[0] == unique and path.exists():
                return path
        raise FileNotFoundError(unique)

    # -- running ---------------------------------------------------------------------------
    def start(self, dovecot: str) -> None:
        config = self.root / "dovecot.conf"
        output = (self.root / "dovecot.out").open("wb")
        self.process = subprocess.Popen(
            [dovecot, "-F", "-c", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown reaches every child
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if _listening(self.imap_port) and _listening(self.imaps_port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Dovecot did not start; its output and log:\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        texts = [p.read_text(errors="replace") for p in (self.root / "dovecot.out", self.log)]
        return "\n".join(t for t in texts if t)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # The master alone takes a second to wind its children down; the group goes at once.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until no child of the group is left
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)

    # -- using -------------------------------------------------------------------------------
    def settings(self, security: str = "plain", **overrides: Any) -> InTheKnowSettings:
        values: dict[str, Any] = {
            "enabled": True,
            "feed_url": "https://www.intheknow.example.com/rss/alerts",
            "imap_host": "127.0.0.1",
            "imap_security": security,
            "imap_port": self.imaps_port if security == "tls" else self.imap_port,
            "imap_ca_file": self.cert,
            "imap_user": USER,
            "imap_password": SecretStr(PASSWORD),
        }
        values.update(overrides)
        return InTheKnowSettings(**values)

    @contextmanager
    def client(self, folder: str = "INBOX") -> Iterator[imaplib.IMAP4]:
        """A second, independent IMAP session, to look at the mailbox as a person would."""
        imap = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        imap.login(USER, PASSWORD)
        imap.select(f'"{folder}"')
        try:
            yield imap
        finally:
            imap.logout()

    def flags(self, folder: str = "INBOX") -> dict[int, str]:
        """UID -> flags of every email in the folder."""
        with self.client(folder) as imap:
            status, data = imap.uid("FETCH", "1:*", "(FLAGS)")
        found: dict[int, str] = {}
        for line in data if status == "OK" else []:
            if isinstance(line, bytes):
                text = line.decode()
                uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                found[uid] = text.split("FLAGS (")[1].split(")")[0]
        return found


@contextmanager
def running_dovecot(extra_config: str = "") -> Iterator[Dovecot]:
    """Start a private Dovecot; stopped and its folder removed on the way out."""
    dovecot = require(DOVECOT, "dovecot-imapd")
    openssl = require("openssl", "openssl")
    as_root = os.geteuid() == 0
    owner = pwd.getpwnam("nobody") if as_root else pwd.getpwuid(os.geteuid())
    # The folder must be readable by Dovecot's own unprivileged users (auth reads the users).
    root = Path(tempfile.mkdtemp(prefix="campusbot-dovecot-"))
    root.chmod(0o755)
    try:
        for attempt in range(3):  # a free port can be taken between probe and bind
            attempt_root = root / f"server{attempt}"
            attempt_root.mkdir(mode=0o755)
            server = Dovecot(
                root=attempt_root,
                imap_port=_free_port(),
                imaps_port=_free_port(),
                mail_uid=owner.pw_uid,
                mail_gid=owner.pw_gid,
                extra_config=extra_config,
            )
            server.make_certificate(openssl)
            server.write_config(owner.pw_name)
            server.make_folder()
            try:
                server.start(dovecot)
            except RuntimeError:
                if attempt == 2 or "Address already in use" not in server.diagnostics():
                    raise
                continue
            try:
                yield server
            finally:
                server.stop()
            return
    finally:
        shutil.rmtree(root, ignore_errors=True)
