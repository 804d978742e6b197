"""Webhook intake under load: distinct signed X Account Activity bodies from a second process.

`campusbot serve` runs as its own process on 127.0.0.1 with a fresh SQLite database; this
process is the load: a bounded number of keep-alive connections, each sending pre-signed,
distinct ``tweet_create_events`` bodies and waiting for the answer. A 200 means the message
is stored (the route stores before answering), so after the run every one must be in the
database exactly once. Classification runs behind: the backlog is then drained by the
pipeline's processor and its rate reported too.

The client speaks HTTP/1.1 over asyncio streams directly rather than through httpx: a load
generator that costs more CPU per request than the server would measure itself on a
2-core machine. The baseline is the HTTP ceiling of the same server stack: a bare uvicorn
app that reads the body and answers 200, under the same load in the same run.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot import migrate
from bot.app import build
from bot.config import load_settings
from bot.db import Database
from bot.models import Message

REQUESTS = int(os.environ.get("CAMPUSBOT_BENCH_WEBHOOKS", "20000"))
CONNECTIONS = 32
ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "twitter" / "aaa_tweet_create_event.json"
BARE_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bodies(n: int, secret: str) -> list[tuple[bytes, str]]:
    template = json.loads(FIXTURE.read_text())
    event = template["tweet_create_events"][0]
    signed = []
    for i in range(n):
        tweet_id = 3_000_000_000_000_000_000 + i
        event.update(id=tweet_id, id_str=str(tweet_id), text=f"@UCLanCampusCops bike nicked {i}")
        body = json.dumps(template, separators=(",", ":")).encode()
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        signed.append((body, "sha256=" + base64.b64encode(digest).decode()))
    return signed


async def _connection(
    port: int, path: str, work: list[tuple[bytes, str]], latencies: list[float], codes: Counter[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while work:
            body, signature = work.pop()
            head = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nx-twitter-webhooks-signature: {signature}\r\n\r\n"
            )
            started = time.perf_counter()
            writer.write(head.encode() + body)
            await writer.drain()
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("the server closed the connection mid-run")
            status = int(status_line.split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            codes[status] += 1
    finally:
        writer.close()


async def _load(port: int, path: str, signed: list[tuple[bytes, str]]) -> dict[str, Any]:
    work = list(signed)
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(port, path, work, latencies, codes) for _ in range(CONNECTIONS))
    )
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(signed),
        "per_second": round(len(signed) / elapsed),
        "latency_ms_p50": round(quantiles[49] * 1000, 2),
        "latency_ms_p99": round(quantiles[98] * 1000, 2),
        "status_codes": {str(k): v for k, v in sorted(codes.items())},
    }


def _wait_until_listening(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not start within 60 s")


def _serve(
    command: list[str], port: int, env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        server = subprocess.Popen(  # noqa: S603 - our own commands
            command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT
        )
    _wait_until_listening(port, server)
    return server


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=30)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def run() -> dict[str, Any]:
    secret = secrets.token_urlsafe(32)
    signed = _bodies(REQUESTS, secret)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'intake.db'}"
        env = {
            **os.environ,
            "CAMPUSBOT_DATABASE_URL": url,
            "CAMPUSBOT_LOG_LEVEL": "WARNING",
            "CAMPUSBOT_TWITTER__ENABLED": "true",
            "CAMPUSBOT_TWITTER__USER_ID": "1450000000000000001",
            "CAMPUSBOT_TWITTER__BEARER_TOKEN": secrets.token_urlsafe(24),
            "CAMPUSBOT_TWITTER__CONSUMER_KEY": secrets.token_urlsafe(24),
            "CAMPUSBOT_TWITTER__CONSUMER_SECRET": secret,
            "CAMPUSBOT_TWITTER__ACCESS_TOKEN": secrets.token_urlsafe(24),
            "CAMPUSBOT_TWITTER__ACCESS_TOKEN_SECRET": secrets.token_urlsafe(24),
        }
        db = Database.from_url(url)
        migrate.upgrade(db)
        campusbot = str(Path(sys.executable).with_name("campusbot"))

        port = _free_port()
        server = _serve(
            [campusbot, "serve", "--port", str(port)], port, env, ROOT, folder / "serve.log"
        )
        try:
            ours = asyncio.run(_load(port, "/webhooks/twitter", signed))
            ours["server_peak_rss_mb"] = _peak_rss_mb(server.pid)
            replayed = asyncio.run(_load(port, "/webhooks/twitter", signed[:1000]))
        except Exception:
            print((folder / "serve.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            _stop(server)

        (folder / "bare.py").write_text(BARE_APP)
        port = _free_port()
        bare_command = [
            sys.executable, "-m", "uvicorn", "bare:app", "--port", str(port),
            "--log-level", "warning", "--app-dir", str(folder),
        ]  # fmt: skip
        bare = _serve(bare_command, port, env, folder, folder / "bare.log")
        try:
            ceiling = asyncio.run(_load(port, "/webhooks/twitter", signed))
        finally:
            _stop(bare)

        with db.session() as session:
            stored = session.execute(select(func.count()).select_from(Message)).scalar_one()
        app = build(load_settings(ROOT / "config.yaml"), db=db)
        app.classifier.classify(["warm up"])
        started = time.perf_counter()
        processed = app.pipeline.process_pending().processed
        drain_seconds = time.perf_counter() - started
        db.dispose()

    ours["stored_after_run"] = stored
    ours["replayed_1000_again_status_codes"] = replayed["status_codes"]
    ours["classified_behind_per_second"] = round(processed / drain_seconds)
    lost = REQUESTS - stored
    assert lost == 0, f"{lost} acknowledged webhook bodies are missing from the database"
    return {
        "ours": ours,
        "http_ceiling": ceiling,
        "rows": [
            {
                "metric": (
                    f"signed X webhooks stored /s, {CONNECTIONS} connections "
                    f"(p50 {ours['latency_ms_p50']} ms, p99 {ours['latency_ms_p99']} ms)"
                ),
                "ours": ours["per_second"],
                "baseline": ceiling["per_second"],
                "ratio": round(ours["per_second"] / ceiling["per_second"], 2),
            }
        ],
    }
