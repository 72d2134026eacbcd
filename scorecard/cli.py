"""`python -m scorecard`: collect the latest results, write the page, optionally the README."""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from scorecard.collect import Collector, Missing, Scorecard
from scorecard.page import render
from scorecard.readme import ReadmeError, rewrite
from scorecard.sources import SOURCES, Source
from toolkit.results import RESULTS_ROOT

PROG = "scorecard"
REPO_ROOT = RESULTS_ROOT.parent
PAGE = "index.html"


def _keys(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    known = {s.key for s in SOURCES}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return keys


def arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__)
    p.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_ROOT,
        help="where the results are: <dir>/contract, hostile, loadtest, bench (default: results/)",
    )
    p.add_argument("--out", type=Path, help="the page's folder (default: <results-dir>/report)")
    p.add_argument(
        "--run-missing",
        action="store_true",
        help="run the quick commands (the hostile suite) for what is missing first; "
        "the long ones are only named",
    )
    p.add_argument(
        "--readme",
        type=Path,
        nargs="?",
        const=REPO_ROOT / "README.md",
        help="also rewrite the marked result tables in this README (default: the project's)",
    )
    p.add_argument(
        "--require",
        type=_keys,
        default=(),
        metavar="KEY,KEY",
        help="exit 1 when any of these is missing or unusable (e.g. contract,hostile in CI)",
    )
    return p.parse_args(argv)


def run_missing(scorecard: Scorecard, cwd: Path) -> list[Source]:
    """Run the quick command of every missing source; the sources it ran."""
    ran = []
    for section in scorecard.sections:
        if isinstance(section, Missing) and section.source.quick:
            print(f"{PROG}: running {section.source.command_line} ({section.source.duration})")
            # Its own outcome does not matter here: a failing suite still writes its results.
            subprocess.run(section.source.command, cwd=cwd, check=False)
            ran.append(section.source)
    return ran


def main(argv: list[str] | None = None) -> int:
    options = arguments(argv)
    collector = Collector(options.results_dir)
    scorecard = collector.collect()
    if options.run_missing and run_missing(scorecard, REPO_ROOT):
        scorecard = collector.collect()
    for section in scorecard.sections:
        title = section.source.title
        if isinstance(section, Missing):
            print(f"{title}: missing: {section.reason}. {section.advice}")
        else:
            note = f" ({section.stated.note})" if section.stated.note else ""
            print(f"{title}: {section.stated.date} on {section.stated.machine}{note}")
    out: Path = options.out or options.results_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    page = out / PAGE
    built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page.write_text(render(scorecard, out, built))
    print(f"scorecard: {page}")
    if options.readme is not None:
        try:
            text, said = rewrite(options.readme.read_text(), scorecard)
        except OSError as error:
            print(f"{PROG}: cannot read {options.readme}: {error.strerror}", file=sys.stderr)
            return 2
        except ReadmeError as error:
            print(f"{PROG}: {error}", file=sys.stderr)
            return 2
        options.readme.write_text(text)
        for line in said:
            print(line)
    absent = [
        s.source.key
        for s in scorecard.sections
        if isinstance(s, Missing) and s.source.key in options.require
    ]
    if absent:
        print(f"{PROG}: required but missing: {', '.join(absent)}", file=sys.stderr)
        return 1
    return 0
