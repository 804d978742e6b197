"""Where the bundled files live, relative to the source tree (installed editable)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_MESSAGES = ROOT / "data" / "sample" / "messages.jsonl"
