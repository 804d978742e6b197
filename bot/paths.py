"""Where the bundled files live, relative to the source tree (installed editable)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_MESSAGES = ROOT / "data" / "sample" / "messages.jsonl"
# The 2017 pilot's published figures; a test fixture that the demo also reports on.
PILOT_METRICS = ROOT / "tests" / "fixtures" / "pilot_2017_metrics.json"
REPORTS_DIR = Path("var") / "reports"
