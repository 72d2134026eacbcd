"""Suite-wide hooks: skip integration tests without Docker, and print the scenario table."""

import os
from collections.abc import Generator

import pytest

from tests.harness import docker_env
from tests.harness.report import SCOREBOARD, Scoreboard
from tests.harness.stack import Stack

# Each gateway suite's outcomes in results/<suite>/<time>/results.json, for the scorecard.
pytest_plugins = ["toolkit.suite_results"]

# Before anything imports testcontainers' configuration: Ryuk cannot start without a registry.
docker_env.disable_ryuk_unless_configured()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--gateways",
        default=os.environ.get("CONTRACT_GATEWAYS", ""),
        help="comma-separated gateways to run the contract suite against (default: every "
        "default one, user files included; env CONTRACT_GATEWAYS)",
    )
    parser.addoption(
        "--gateway-file",
        action="append",
        default=[],
        metavar="PATH",
        help="a gateway description (TOML, see docs/contract-suite.md) to run the suite against "
        "besides the project's own; repeatable (env GATEWAY_FILES, ':'-separated)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "scenario(number, title): the contract scenario a test belongs to"
    )
    config.addinivalue_line(
        "markers",
        "several_workers: the scenario runs again with each gateway at CONTRACT_WORKERS (2) "
        "workers, processes or threads",
    )
    config.stash[SCOREBOARD] = Scoreboard()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    integration = [item for item in items if item.get_closest_marker("integration")]
    if not integration:
        return
    reason = docker_env.unreachable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true" or os.environ.get("CONTRACT_REQUIRE_DOCKER") == "1":
        pytest.exit(f"the contract suite must run here, but {reason}", returncode=4)
    skip = pytest.mark.skip(reason=f"integration tests need Docker: {reason}")
    for item in integration:
        item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    scenario = item.get_closest_marker("scenario")
    spec = getattr(item, "callspec", None)
    gateway = spec.params.get("gateway_spec") if spec is not None else None
    if scenario is None or gateway is None:
        return report
    if report.failed:
        stack = item.funcargs.get("stack") if isinstance(item, pytest.Function) else None
        if isinstance(stack, Stack):
            report.sections.append((f"{gateway.name} logs (last 60 lines)", stack.logs()))
    outcome = _outcome(report)
    if outcome is not None:
        number, title = scenario.args
        item.config.stash[SCOREBOARD].record(number, title, gateway.name, outcome)
    return report


def _outcome(report: pytest.TestReport) -> str | None:
    """The test's final outcome, counted once: at `call`, or at the phase that stopped it."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.when == "call":
        return report.outcome
    if report.failed:
        return "error"
    if report.skipped:
        return "skipped"
    return None


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash[SCOREBOARD].render()
    if not lines:
        return
    terminalreporter.section("contract scenarios by gateway")
    for line in lines:
        terminalreporter.write_line(line)
