"""A pytest plugin: each gateway suite's outcomes as results/<suite>/<UTC time>/results.json.

A suite is a folder under tests/ whose tests take a gateway as parameter (`gateway_spec` in the
contract suite, `gateway_name` in the hostile one). Each case is one test, its id the test's
node id without the gateway's part, and for each gateway one outcome: `pass`, `deviation` (a
strict xfail: the gateway declares it does otherwise, and says why), `fail` or `skip`, with its
reason; and the figures tests record as user properties (the contract suite's `measure`), by
name and gateway. The scorecard (`python -m scorecard`) reads these files;
`-p no:toolkit.suite_results` leaves them unwritten.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from toolkit.machine import describe_machine
from toolkit.results import RESULTS_ROOT, run_folder

RESULTS_FILE = "results.json"
# The parameters that name the gateway a test runs against, in the suites that have one.
GATEWAY_PARAMS = ("gateway_spec", "gateway_name")
# Markers whose (number, title) group a suite's cases into its scenarios.
GROUP_MARKERS = ("scenario", "hostile_case")
PASS, DEVIATION, FAIL, SKIP = "pass", "deviation", "fail", "skip"
# When several phases report (setup, call, teardown), the worst outcome is the test's.
_RANK = {PASS: 0, SKIP: 1, DEVIATION: 2, FAIL: 3}
REASON_CHARS = 500


@dataclass(frozen=True, slots=True)
class CaseOf:
    """What a collected test is in its suite's results: the suite, its case, its gateway."""

    suite: str
    case: str
    group: str | None
    gateway: str


@dataclass(slots=True)
class Outcome:
    outcome: str
    reason: str | None = None


@dataclass
class SuiteRecorder:
    """Every gateway test's outcome in this session, written per suite at its end."""

    root: Path
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    cases: dict[str, CaseOf] = field(default_factory=dict)  # node id -> what it is
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # node id -> its outcome
    # node id -> the figures it recorded (user_properties: the contract suite's `measure`)
    measured: dict[str, dict[str, str]] = field(default_factory=dict)

    def collected(self, item: pytest.Item, rootpath: Path) -> None:
        case = case_of(item, rootpath)
        if case is not None:
            self.cases[item.nodeid] = case

    def reported(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.cases:
            return
        for name, value in report.user_properties:
            self.measured.setdefault(report.nodeid, {})[str(name)] = str(value)
        outcome = phase_outcome(report)
        if outcome is None:
            return
        known = self.outcomes.get(report.nodeid)
        if known is None or _RANK[outcome.outcome] > _RANK[known.outcome]:
            self.outcomes[report.nodeid] = outcome

    def documents(self, args: list[str], exit_status: int) -> dict[str, dict[str, Any]]:
        """Each suite's results.json content, by suite."""
        machine = describe_machine()
        finished = datetime.now(UTC)
        suites: dict[str, dict[str, Any]] = {}
        for nodeid, case in self.cases.items():
            outcome = self.outcomes.get(nodeid)
            if outcome is None:  # deselected, or the run stopped before it
                continue
            doc = suites.setdefault(
                case.suite,
                {
                    "suite": case.suite,
                    "started_at": _iso(self.started),
                    "finished_at": _iso(finished),
                    "machine": {**asdict(machine), "summary": machine.summary},
                    "pytest_args": args,
                    "exit_status": exit_status,
                    "gateways": [],
                    "cases": {},
                    "measurements": {},
                },
            )
            for name, value in self.measured.get(nodeid, {}).items():
                doc["measurements"].setdefault(name, {})[case.gateway] = value
            if case.gateway not in doc["gateways"]:
                doc["gateways"].append(case.gateway)
            entry = doc["cases"].setdefault(
                case.case, {"id": case.case, "group": case.group, "results": {}}
            )
            entry["results"][case.gateway] = {"outcome": outcome.outcome, "reason": outcome.reason}
        for doc in suites.values():
            doc["cases"] = list(doc["cases"].values())
        return suites

    def write(self, args: list[str], exit_status: int) -> list[Path]:
        written = []
        for suite, doc in self.documents(args, exit_status).items():
            folder = run_folder(self.root / suite, self.started)
            path = folder / RESULTS_FILE
            path.write_text(json.dumps(doc, indent=1) + "\n")
            written.append(path)
        return written


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def gateway_of(item: pytest.Item) -> str | None:
    """The gateway's name (also its parameter id), or None: the test takes no gateway."""
    spec = getattr(item, "callspec", None)
    if spec is None:
        return None
    for param in GATEWAY_PARAMS:
        if param in spec.params:
            value = spec.params[param]
            name = value if isinstance(value, str) else getattr(value, "name", None)
            if isinstance(name, str):
                return name
    return None


def case_of(item: pytest.Item, rootpath: Path) -> CaseOf | None:
    """The suite (tests/<suite>/...), case and gateway of a gateway test; None for any other."""
    gateway = gateway_of(item)
    if gateway is None:
        return None
    try:
        parts = item.path.relative_to(rootpath).parts
    except ValueError:
        return None
    if len(parts) < 3 or parts[0] != "tests":
        return None
    return CaseOf(
        suite=parts[1], case=_case_id(item.nodeid, gateway), group=_group(item), gateway=gateway
    )


def _case_id(nodeid: str, gateway_id: str) -> str:
    """The node id without the gateway's part of its parameter id: t[nginx-a] -> t[a]."""
    base, bracket, params = nodeid.partition("[")
    if not bracket:
        return nodeid
    params = params.removesuffix("]")
    if params == gateway_id:
        return base
    for rest in (
        params.removeprefix(f"{gateway_id}-") if params.startswith(f"{gateway_id}-") else None,
        params.removesuffix(f"-{gateway_id}") if params.endswith(f"-{gateway_id}") else None,
        params.replace(f"-{gateway_id}-", "-", 1) if f"-{gateway_id}-" in params else None,
    ):
        if rest is not None:
            return f"{base}[{rest}]"
    return nodeid


def _group(item: pytest.Item) -> str | None:
    for name in GROUP_MARKERS:
        marker = item.get_closest_marker(name)
        if marker is not None and len(marker.args) == 2:
            number, title = marker.args
            return f"{number}. {title}"
    return None


def phase_outcome(report: pytest.TestReport) -> Outcome | None:
    """One phase's outcome; None for a phase that says nothing (a setup or teardown that passed)."""
    if hasattr(report, "wasxfail") and report.skipped:
        return Outcome(DEVIATION, _short(str(report.wasxfail)))
    if report.failed:
        return Outcome(FAIL, _short(_failure(report)))
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        return Outcome(SKIP, _short(reason.removeprefix("Skipped: ")))
    if report.when == "call":
        return Outcome(PASS)
    return None


def _failure(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    prefix = "" if report.when == "call" else f"error in {report.when}: "
    return prefix + (message if isinstance(message, str) else report.longreprtext.strip())


def _short(text: str) -> str:
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


class _Hooks:
    """The recorder's pytest hooks, registered for the session by pytest_configure."""

    def __init__(self, recorder: SuiteRecorder, config: pytest.Config) -> None:
        self.recorder = recorder
        self.config = config
        self.written: list[Path] = []

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            self.recorder.collected(item, self.config.rootpath)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.recorder.reported(report)

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self.written = self.recorder.write(
            list(self.config.invocation_params.args), int(exitstatus)
        )

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for path in self.written:
            terminalreporter.write_line(f"suite results: {path}")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--suite-results-dir",
        type=Path,
        default=RESULTS_ROOT,
        metavar="DIR",
        help="where each gateway suite's results.json goes: DIR/<suite>/<UTC time>/ "
        "(default: results/; -p no:toolkit.suite_results writes none)",
    )


def pytest_configure(config: pytest.Config) -> None:
    recorder = SuiteRecorder(root=config.getoption("suite_results_dir"))
    config.pluginmanager.register(_Hooks(recorder, config), "suite_results_recorder")
