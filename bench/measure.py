"""Run one command and report its wall time and peak memory (its own process tree only)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main() -> int:
    command = sys.argv[1:]
    started = time.perf_counter()
    completed = subprocess.run(command, check=False)  # noqa: S603 - our own bench commands
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {"seconds": elapsed, "peak_mb": peak_kb / 1024, "returncode": completed.returncode}
        )
    )
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
