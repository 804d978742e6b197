"""Operations: structured logs with request ids (``logs``), Prometheus counters (``metrics``),
and the ASGI middleware and /metrics endpoint that tie them to the web app (``middleware``).

Import the submodule you need; this package imports nothing itself, so a command that only
logs does not pay for prometheus_client.
"""
