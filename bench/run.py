"""`make bench`: every benchmark, each beside a baseline measured in the same run.

Figures go to bench/results/<name>.json and a table is printed. Never part of `make test`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import classifier_speed, pipeline_throughput, report_speed, webhook_intake

RESULTS = Path(__file__).parent / "results"
BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {
    "classifier": classifier_speed.run,
    "pipeline_throughput": pipeline_throughput.run,
    "reports": report_speed.run,
    "webhook_intake": webhook_intake.run,
}


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = Table(title="campusbot benchmarks")
    for column in ("benchmark", "metric", "ours", "baseline", "ratio"):
        table.add_column(column)
    for name in names:
        started = time.perf_counter()
        figures = BENCHMARKS[name]()
        figures["wall_seconds"] = round(time.perf_counter() - started, 2)
        (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2))
        for row in figures["rows"]:
            table.add_row(
                name, row["metric"], str(row["ours"]), str(row["baseline"]), str(row["ratio"])
            )
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
