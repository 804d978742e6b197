"""Reports as files: one self-contained HTML page (inline SVG charts, no scripts, no CDN,
readable printed), CSV (one file per table) or JSON."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from bot.reports import Report, Table
from bot.templating import html_environment

PALETTE = ["#0b2545", "#d1495b", "#edae49", "#00798c", "#30638e", "#8d6a9f", "#6c757d"]
WIDTH, HEIGHT, PAD = 720, 240, 40


def write_json(report: Report, path: Path) -> None:
    payload = {
        "from": report.query.start.isoformat(),
        "to": report.query.end.isoformat(),
        "timezone": str(report.query.tz),
        "campaign": report.query.campaign,
        "channel": report.query.channel,
        "tables": {
            name: {"title": t.title, "rows": t.as_dicts()} for name, t in report.tables.items()
        },
    }
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_csv(report: Report, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in report.tables.items():
        path = folder / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(table.columns)
            writer.writerows([[_safe_cell(v) for v in row] for row in table.rows])
        written.append(path)
    return written


def _safe_cell(value: Any) -> Any:
    """Stop a spreadsheet from running text that starts like a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def bar_chart(series: dict[str, dict[str, float]], title: str) -> Markup:
    """Grouped bars: x labels (days or names) by series (channels, scenarios)."""
    labels = sorted({x for points in series.values() for x in points})
    if not labels:
        return Markup("")
    top = max((v for points in series.values() for v in points.values()), default=0) or 1
    names = sorted(series)
    slot = (WIDTH - 2 * PAD) / len(labels)
    bar = max(slot / (len(names) + 1), 1.0)
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT + 30}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#999"/>',
        f'<text x="{PAD - 4}" y="{PAD}" font-size="10" text-anchor="end">{top:,.0f}</text>',
    ]
    for i, label in enumerate(labels):
        for j, name in enumerate(names):
            value = series[name].get(label, 0)
            h = (HEIGHT - 2 * PAD) * value / top
            x = PAD + i * slot + j * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{bar * 0.9:.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                f"<title>{escape(name)} {escape(label)}: {value:,.0f}</title></rect>"
            )
        if len(labels) <= 14 or i % max(len(labels) // 14, 1) == 0:
            parts.append(
                f'<text x="{PAD + i * slot:.1f}" y="{HEIGHT - PAD + 12}" '
                f'font-size="9">{escape(label[5:] if len(label) == 10 else label)}</text>'
            )
    for j, name in enumerate(names):
        parts.append(
            f'<rect x="{PAD + j * 130}" y="{HEIGHT}" width="10" height="10" '
            f'fill="{PALETTE[j % len(PALETTE)]}"/><text x="{PAD + j * 130 + 14}" '
            f'y="{HEIGHT + 9}" font-size="10">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label above went through escape()


def _series(table: Table, x: str, group: str, value: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for row in table.as_dicts():
        out[str(row[group])][str(row[x])] = float(row[value] or 0)
    return out


def render_html(report: Report) -> str:
    charts = {
        "reach_per_day": bar_chart(
            _series(report.tables["reach_per_day"], "day", "channel", "reach"),
            "Reach per day by channel",
        ),
        "inbound_by_scenario": bar_chart(
            _series(report.tables["inbound_by_scenario"], "day", "scenario", "messages"),
            "Inbound messages per day by scenario",
        ),
    }
    return (
        html_environment()
        .get_template("reports/report.html.j2")
        .render(report=report, tables=report.tables, charts=charts)
    )
