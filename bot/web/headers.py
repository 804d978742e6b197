"""Security headers on every response, as plain ASGI.

Starlette's ``@app.middleware("http")`` runs each request through a task group and a
streamed copy of the response; on the webhook path, answered hundreds of times a second
under load, that cost more than the headers are worth. This only edits the
``http.response.start`` message.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SecurityHeaders:
    def __init__(
        self,
        app: ASGIApp,
        *,
        headers: Mapping[str, str],
        static_prefix: str = "/static/",
        static_cache: str = "private, max-age=3600",
    ) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.static_prefix = static_prefix
        self.static_cache = static_cache.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(self.static_prefix)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = list(message.get("headers", []))
                if static and b"cache-control" not in present:
                    added.append((b"cache-control", self.static_cache))
                    present.add(b"cache-control")
                added += [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": added}
            await send(message)

        await self.app(scope, receive, with_headers)
