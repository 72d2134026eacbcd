"""The scorecard as one self-contained HTML page: inline CSS, inline SVG and PNG, no script.

Every text that comes from a results file (gateway names, case ids, reasons, machine lines,
table cells) goes through `escape`: a gateway described by a user's file is a hostile input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from html import escape
from pathlib import Path
from urllib.parse import quote

from scorecard.collect import Case, Chart, FigureCard, Missing, Scorecard, Stated, SuiteCard
from toolkit.suite_results import DEVIATION, FAIL, PASS, SKIP

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 80em; color: #222;
  padding: 0 1em; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; }
tr.group th { background: #e8eef6; text-align: left; }
td.case { min-width: 24em; max-width: 34em; overflow-wrap: anywhere; }
td.pass, td.deviation, td.fail, td.skip { white-space: nowrap; }
td.pass { background: #e3f5e1; }
td.deviation { background: #fff4cc; cursor: help; }
td.fail { background: #f9d6d5; font-weight: bold; cursor: help; }
td.skip { background: #eee; color: #666; cursor: help; }
td.none { color: #999; }
.stated, .note { color: #555; font-size: 0.9em; }
.missing { background: #fdeeee; border-left: 4px solid #d33; padding: 0.5em 0.8em; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
svg.chart text { font: 12px system-ui, sans-serif; fill: #222; }
svg.chart .chart-title { font-weight: bold; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""
LABELS = {PASS: "pass", DEVIATION: "deviation", FAIL: "FAIL", SKIP: "skip"}


def e(text: object) -> str:
    """Text from anywhere, safe in an element or a quoted attribute."""
    return escape(str(text), quote=True)


def link(path: Path, page_dir: Path) -> str:
    """A relative link from the page to a raw result file, its name as the text."""
    relative = Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix()
    return f'<a href="{e(quote(relative))}">{e(path.name)}</a>'


def stated(info: Stated, page_dir: Path) -> str:
    files = ", ".join(link(p, page_dir) for p in info.files)
    note = f" <strong>{e(info.note)}</strong>" if info.note else ""
    return (
        f'<p class="stated">Run of {e(info.date)} on {e(info.machine)}; raw result: {files}.'
        f"{note}</p>"
    )


def missing(section: Missing) -> str:
    source = section.source
    return (
        f'<section id="{e(source.key)}"><h2>{e(source.title)}</h2>'
        f'<p class="missing">Missing: {e(section.reason)}. '
        f"<code>{e(source.command_line)}</code> produces it ({e(source.duration)}).</p></section>"
    )


def _cell(card: SuiteCard, case: Case, gateway: str, footnotes: dict[tuple[str, str], int]) -> str:
    cell = case.results.get(gateway)
    if cell is None:
        return '<td class="none" title="not run against this gateway">-</td>'
    title = f' title="{e(cell.reason)}"' if cell.reason else ""
    mark = ""
    number = footnotes.get((case.id, gateway))
    if number is not None:
        mark = f' <a href="#{e(card.source.key)}-note-{number}">[{number}]</a>'
    return f'<td class="{e(cell.outcome)}"{title}>{LABELS[cell.outcome]}{mark}</td>'


def suite_section(card: SuiteCard, page_dir: Path) -> str:
    key = card.source.key
    # Numbered in the table's order, so the marks read 1, 2, 3 down the table.
    notes = card.notes()
    footnotes = {(case.id, gateway): n for n, (gateway, case, _) in enumerate(notes, 1)}
    head = "".join(f"<th>{e(g)}</th>" for g in card.gateways)
    totals = "".join(f'<td class="num">{e(_counts(card, g))}</td>' for g in card.gateways)
    rows = [f"<tr><th>all cases</th>{totals}</tr>"]
    for group, cases in card.groups():
        rows.append(
            f'<tr class="group"><th colspan="{len(card.gateways) + 1}">{e(group)}</th></tr>'
        )
        for case in cases:
            cells = "".join(_cell(card, case, g, footnotes) for g in card.gateways)
            rows.append(
                f'<tr><td class="case" title="{e(case.id)}">{e(case.name)}</td>{cells}</tr>'
            )
    parts = [
        f'<section id="{e(key)}"><h2>{e(card.source.title)}</h2>',
        stated(card.stated, page_dir),
        f'<p class="note">pytest {e(" ".join(card.args) or "(default arguments)")}'
        f"{_exit(card.exit_status)}</p>",
        f'<table class="suite"><thead><tr><th>case</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>",
    ]
    if card.measurements:
        measured = [
            [name, *(values.get(g, "-") for g in card.gateways)]
            for name, values in card.measurements
        ]
        parts.append(f"<h3>Measured</h3>{table(['figure', *card.gateways], measured)}")
    headings = {
        DEVIATION: "Declared deviations",
        FAIL: "Failures",
        SKIP: "Skipped",
    }
    for outcome, heading in headings.items():
        items = [
            f'<li id="{e(key)}-note-{n}" value="{n}"><strong>{e(gateway)}</strong>, '
            f"<code>{e(case.name)}</code>: {e(cell.reason or 'no reason given')}</li>"
            for n, (gateway, case, cell) in enumerate(notes, 1)
            if cell.outcome == outcome
        ]
        if items:
            parts.append(f"<h3>{heading}</h3><ol>{''.join(items)}</ol>")
    parts.append("</section>")
    return "".join(parts)


EXIT_MEANINGS = {0: "all passed", 1: "some failed", 2: "interrupted: cases are missing"}


def _exit(status: int | None) -> str:
    if status is None:
        return ""
    return f"; exit status {status} ({e(EXIT_MEANINGS.get(status, 'see pytest --help'))})"


def _counts(card: SuiteCard, gateway: str) -> str:
    counts = card.counts(gateway)
    return ", ".join(f"{counts[o]} {LABELS[o]}" for o in (PASS, DEVIATION, FAIL, SKIP) if counts[o])


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<th>{e(c)}</th>" if i == 0 else f'<td class="num">{e(c)}</td>'
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table class="figures"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def chart(item: Chart) -> str:
    if item.svg:
        # Built by scorecard.svg, which escapes every name and title it puts in.
        return f"<figure>{item.svg}</figure>"
    return (
        f'<figure><img alt="{e(item.title)}" src="data:image/png;base64,{e(item.png_base64)}">'
        f"<figcaption>{e(item.title)}</figcaption></figure>"
    )


def figure_section(card: FigureCard, page_dir: Path) -> str:
    parts = [
        f'<section id="{e(card.source.key)}"><h2>{e(card.source.title)}</h2>',
        stated(card.stated, page_dir),
    ]
    for caption, (header, rows) in card.tables:
        parts.append(f"<h3>{e(caption)}</h3>{table(header, rows)}")
    if card.charts:
        parts.append(f'<div class="charts">{"".join(chart(c) for c in card.charts)}</div>')
    parts.append("</section>")
    return "".join(parts)


def overview(scorecard: Scorecard) -> str:
    rows = []
    for section in scorecard.sections:
        if isinstance(section, Missing):
            cells = f'<td colspan="2">missing: <code>{e(section.source.command_line)}</code></td>'
        else:
            cells = f"<td>{e(section.stated.date)}</td><td>{e(section.stated.machine)}</td>"
        rows.append(
            f'<tr><th><a href="#{e(section.source.key)}">{e(section.source.title)}</a></th>'
            f"{cells}</tr>"
        )
    return (
        '<table class="overview"><thead><tr><th>evidence</th><th>run</th><th>machine</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render(scorecard: Scorecard, page_dir: Path, built_at: str) -> str:
    sections = []
    for section in scorecard.sections:
        if isinstance(section, Missing):
            sections.append(missing(section))
        elif isinstance(section, SuiteCard):
            sections.append(suite_section(section, page_dir))
        else:
            sections.append(figure_section(section, page_dir))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Gateway scorecard</title><style>{CSS}</style></head><body>"
        "<h1>Gateway scorecard</h1>"
        f'<p class="stated">Built {e(built_at)} by <code>python -m scorecard</code> from the '
        "latest result of each kind. Hover a deviation, failure or skip for its reason; each "
        "is listed below its table.</p>"
        f"{overview(scorecard)}{''.join(sections)}</body></html>\n"
    )
