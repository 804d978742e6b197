"""`campusbot classify` against the scikit-learn baseline: accuracy side by side, and the
same JSONL job (load a trained model, read, predict, write) timed as whole processes on
100,000 unique short messages. Also the model's load time and peak memory."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.baseline_classifier import BaselineClassifier
from bench.baseline_classifier import train as train_baseline
from classifiers.dataset import DATA_DIR, load_split, read_jsonl
from classifiers.metrics import Report, evaluate
from classifiers.model import SpacyClassifier

MESSAGES = 100_000
PYTHON = sys.executable
CAMPUSBOT = str(Path(PYTHON).parent / "campusbot")
# Timed processes may cache bytecode, as an installed deployment does (this machine's
# environment turns that off, which would add seconds of compiling to every start).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _unique_messages(path: Path, n: int) -> None:
    """Short, unique messages built from the training texts with varied openings and endings."""
    rng = random.Random(7)
    texts = [e.text for e in load_split("train")]
    openers = ["", "hi ", "hey ", "@UCLanCampusCops ", "pls help ", "fyi ", "morning, "]
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            text = f"{rng.choice(openers)}{rng.choice(texts)[:160]} #{i}"
            handle.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")


def _compile_bytecode() -> None:
    """Cache bytecode for the project and its packages once, as an installed deployment has."""
    roots = [str(Path(__file__).resolve().parent.parent), *sys.path[1:]]
    subprocess.run(  # noqa: S603
        [PYTHON, "-m", "compileall", "-q", "-j", "0", *(r for r in roots if Path(r).is_dir())],
        capture_output=True,
        env=ENV,
        check=False,
    )


def _timed(command: list[str]) -> dict[str, Any]:
    result = subprocess.run(  # noqa: S603 - our own commands
        [PYTHON, "-m", "bench.measure", *command],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
    )
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def _load_seconds() -> float:
    code = (
        "import time, classifiers.model as m; t = time.perf_counter(); "
        "m.SpacyClassifier.load(); print(time.perf_counter() - t)"
    )
    out = subprocess.run(  # noqa: S603
        [PYTHON, "-c", code], capture_output=True, text=True, check=True, env=ENV
    )
    return float(out.stdout.strip())


def _accuracy_rows(ours: Report, base: Report, where: str) -> list[dict[str, Any]]:
    pairs = [
        ("scenario macro-F1", ours.scenario_macro_f1, base.scenario_macro_f1),
        ("urgent recall", ours.urgent.recall, base.urgent.recall),
        ("urgent precision", ours.urgent.precision, base.urgent.precision),
        ("risk recall", ours.risk.recall, base.risk.recall),
        ("risk precision", ours.risk.precision, base.risk.precision),
        ("intent accuracy", ours.intent_accuracy, base.intent_accuracy),
    ]
    return [
        {
            "metric": f"{where}: {name}",
            "ours": a,
            "baseline": b,
            "ratio": round(a / b, 2) if b else None,
        }
        for name, a, b in pairs
    ]


def run() -> dict[str, Any]:
    ours = SpacyClassifier.load()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        baseline_path = folder / "baseline.pkl"
        baseline: BaselineClassifier = train_baseline(baseline_path)
        rows: list[dict[str, Any]] = []
        sets = {
            "test split": load_split("test"),
            "external check": list(read_jsonl(DATA_DIR / "external_check.jsonl")),
        }
        accuracy = {}
        for where, examples in sets.items():
            mine, theirs = evaluate(ours, examples), evaluate(baseline, examples)
            accuracy[where] = {"ours": mine.as_json(), "baseline": theirs.as_json()}
            rows += _accuracy_rows(mine, theirs, where)
        source = folder / "messages.jsonl"
        _unique_messages(source, MESSAGES)
        _compile_bytecode()
        mine_t = _timed(
            [CAMPUSBOT, "classify", "--input", str(source), "--output", str(folder / "ours.jsonl")]
        )
        base_t = _timed(
            [
                PYTHON,
                "-m",
                "bench.baseline_classifier",
                "classify",
                "--model",
                str(baseline_path),
                "--input",
                str(source),
                "--output",
                str(folder / "baseline.jsonl"),
            ]
        )
    ours_rate = MESSAGES / mine_t["seconds"]
    base_rate = MESSAGES / base_t["seconds"]
    load = _load_seconds()
    rows += [
        {
            "metric": f"classify {MESSAGES} msgs, whole process (msg/s)",
            "ours": round(ours_rate),
            "baseline": round(base_rate),
            "ratio": round(ours_rate / base_rate, 2),
        },
        {
            "metric": "peak memory of that process (MB)",
            "ours": round(mine_t["peak_mb"]),
            "baseline": round(base_t["peak_mb"]),
            "ratio": round(mine_t["peak_mb"] / base_t["peak_mb"], 2),
        },
        {
            "metric": "model load after import (s)",
            "ours": round(load, 3),
            "baseline": None,
            "ratio": None,
        },
    ]
    return {
        "messages": MESSAGES,
        "accuracy": accuracy,
        "ours_per_second": round(ours_rate),
        "baseline_per_second": round(base_rate),
        "load_seconds": load,
        "ours_peak_mb": mine_t["peak_mb"],
        "baseline_peak_mb": base_t["peak_mb"],
        "rows": rows,
    }
