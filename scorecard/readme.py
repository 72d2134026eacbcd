"""The README's result tables, rewritten from the scorecard between marker comments:

    <!-- scorecard:contract -->
    ...generated; edits here are lost...
    <!-- /scorecard:contract -->

A section whose result is missing, or only a smoke run, keeps what it has, and says why.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from html import escape

from scorecard.collect import FigureCard, Missing, Scorecard, SuiteCard
from toolkit.suite_results import DEVIATION, FAIL, PASS, SKIP
from toolkit.tables import markdown_table

# Groups past which the README's table counts those every gateway passed in one row.
LONG_TABLE = 15
# Worst first, as a cell lists them.
ORDER = (FAIL, DEVIATION, SKIP, PASS)


class ReadmeError(Exception):
    """The README's markers are not where or what they should be."""


def md(text: object) -> str:
    """Text from a results file, safe in a markdown table cell: no markup, no column break."""
    return escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def outcome_cell(outcomes: Counter[str]) -> str:
    if not outcomes:
        return "-"
    # A failure shouts: it is what a reader must not miss.
    return ", ".join(f"{o.upper() if o == FAIL else o} {outcomes[o]}" for o in ORDER if outcomes[o])


def suite_markdown(card: SuiteCard) -> str:
    """A row per group; in a long table, the groups every gateway passed are counted in one."""
    rows = []
    passed_by_all = []
    groups = card.groups()
    for group, cases in groups:
        counts = [
            Counter(c.results[g].outcome for c in cases if g in c.results) for g in card.gateways
        ]
        if len(groups) > LONG_TABLE and all(set(c) == {PASS} for c in counts):
            passed_by_all.append(group)
            continue
        rows.append([md(group), *(outcome_cell(c) for c in counts)])
    if passed_by_all:
        label = f"{len(passed_by_all)} more, passed by every gateway (on the scorecard page)"
        rows.append([label, *(["pass"] * len(card.gateways))])
    rows.append(["all cases", *(outcome_cell(card.counts(g)) for g in card.gateways)])
    for name, values in card.measurements:
        rows.append([md(name), *(md(values.get(g, "-")) for g in card.gateways)])
    table = markdown_table(["", *(md(g) for g in card.gateways)], rows)
    return "\n".join(table)


def stated_line(section: SuiteCard | FigureCard) -> str:
    info = section.stated
    return (
        f"From the scorecard (`python -m scorecard --readme`) of the run of {md(info.date)} on "
        f"{md(info.machine)}."
    )


def section_text(section: SuiteCard | FigureCard | Missing) -> tuple[str | None, str]:
    """(the new text, or None to keep the old; what happened, for the terminal)."""
    key = section.source.key
    if isinstance(section, Missing):
        return None, f"README {key}: kept as it was: {section.reason}"
    if isinstance(section, FigureCard) and section.stated.note:
        return None, f"README {key}: kept as it was: the latest is a {section.stated.note}"
    body = suite_markdown(section) if isinstance(section, SuiteCard) else section.markdown
    return f"{stated_line(section)}\n\n{body}", f"README {key}: rewritten ({section.stated.date})"


def marker_pattern(key: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- scorecard:{re.escape(key)} -->\n)(.*?)(<!-- /scorecard:{re.escape(key)} -->)",
        re.DOTALL,
    )


def _replacement(text: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        return f"{match.group(1)}{text}\n{match.group(3)}"

    return replace


def rewrite(readme: str, scorecard: Scorecard) -> tuple[str, list[str]]:
    """The README with every marked section that has a result rewritten; one line per section."""
    said = []
    for section in scorecard.sections:
        key = section.source.key
        pattern = marker_pattern(key)
        found = len(pattern.findall(readme))
        if found == 0:
            said.append(f"README {key}: no <!-- scorecard:{key} --> ... <!-- /scorecard:{key} -->")
            continue
        if found > 1:
            raise ReadmeError(f"README has {found} sections marked scorecard:{key}; one at most")
        text, line = section_text(section)
        said.append(line)
        if text is not None:
            readme = pattern.sub(_replacement(text), readme)
    return readme, said
