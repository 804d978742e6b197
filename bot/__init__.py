"""Campus police engagement bot: ingest, classify, triage and answer student messages."""

__version__ = "0.1.0"
