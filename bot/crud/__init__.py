"""Keyword-only data functions per aggregate; each takes the session it works in."""
