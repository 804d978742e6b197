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


def hbar_chart(bars: list[tuple[str, float]], title: str) -> Markup:
    """One horizontal bar per label, in the order given (a question's choices keep theirs)."""
    if not bars:
        return Markup("")
    label_w, row_h, value_w = 260, 22, 60
    top = max(v for _, v in bars) or 1
    span = WIDTH - label_w - value_w
    height = row_h * len(bars) + 8
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (label, value) in enumerate(bars):
        y = 4 + i * row_h
        shown = label if len(label) <= 42 else label[:41] + "…"
        w = span * value / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">'
            f"<title>{escape(label)}</title>{escape(shown)}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {value:,.0f}</title></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="11">{value:,.0f}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label above went through escape()


def _figure(caption: str, chart: Markup, note: str = "") -> Markup:
    extra = Markup("<p>{}</p>").format(note) if note else Markup("")
    return Markup("<figure><figcaption>{}</figcaption>{}{}</figure>").format(caption, extra, chart)


def _per_question(table: Table, label: str, value: str) -> dict[tuple[str, int, str], list[Any]]:
    grouped: dict[tuple[str, int, str], list[Any]] = defaultdict(list)
    for row in table.as_dicts():
        grouped[(row["survey"], row["question_no"], row["question"])].append(
            (str(row[label]), float(row[value] or 0))
        )
    return grouped


def _theme_in_words(scenario: str, count: float) -> str:
    one = count == 1
    answers = f"{count:,.0f} free-text answer{'' if one else 's'}"
    if scenario == "other":
        return f"{answers} {'mentions' if one else 'mention'} none of the scenarios"
    if scenario == "not yet tagged":
        return f"{answers} {'is' if one else 'are'} not yet tagged"
    return f"{answers} {'mentions' if one else 'mention'} {scenario.replace('_', ' ')}"


def survey_charts(report: Report) -> dict[str, Markup]:
    """A bar chart per question: answers per choice, and free-text answers per scenario
    with the same in words ("12 free-text answers mention theft")."""
    charts: dict[str, Markup] = {}
    if "survey_choices" in report.tables:
        charts["survey_choices"] = Markup("").join(
            _figure(f"{survey}, question {no}: {question}", hbar_chart(bars, question))
            for (survey, no, question), bars in _per_question(
                report.tables["survey_choices"], "choice", "answers"
            ).items()
        )
    if "survey_themes" in report.tables:
        figures = []
        for (survey, no, question), bars in _per_question(
            report.tables["survey_themes"], "scenario", "answers"
        ).items():
            said = "; ".join(_theme_in_words(scenario, n) for scenario, n in bars)
            caption = f"{survey}, question {no}: {question}" if no else f"{survey}: {question}"
            figures.append(_figure(caption, hbar_chart(bars, question), said + "."))
        charts["survey_themes"] = Markup("").join(figures)
    return charts


def render_html(report: Report) -> str:
    charts = {
        **survey_charts(report),
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
