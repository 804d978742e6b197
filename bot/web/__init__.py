"""The web console, webhooks and health endpoints (FastAPI)."""
