"""The swarm scenario runs only when asked for (`-m swarm`, i.e. `make test-swarm`): it deploys
onto Docker Swarm and takes minutes, so a plain `pytest` or `make test` leaves it out. After the
run both gateways' figures are printed side by side and written to results/swarm/<time>/."""

from pathlib import Path

import pytest

from tests.swarm import report
from tests.swarm.scenario import ScenarioResult
from toolkit.results import RESULTS_ROOT, run_folder

SWARM_RESULTS = pytest.StashKey[list[ScenarioResult]]()
SWARM_OUT = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SWARM_RESULTS] = []
    # Created once there is something to write.
    config.stash[SWARM_OUT] = run_folder(RESULTS_ROOT / "swarm", create=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "swarm" in (config.option.markexpr or ""):
        return
    skipped = [item for item in items if item.get_closest_marker("swarm")]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if not item.get_closest_marker("swarm")]


@pytest.fixture(scope="session")
def swarm_out(pytestconfig: pytest.Config) -> Path:
    """This run's results directory (summary.md, each gateway's log)."""
    out = pytestconfig.stash[SWARM_OUT]
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="session")
def swarm_results(pytestconfig: pytest.Config) -> list[ScenarioResult]:
    return pytestconfig.stash[SWARM_RESULTS]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    results = config.stash.get(SWARM_RESULTS, [])
    if not results:
        return
    out = config.stash[SWARM_OUT]
    out.mkdir(parents=True, exist_ok=True)
    text = "\n\n".join(
        [
            "# Storage scaled, rolled and killed under load, on Docker Swarm",
            report.table(results),
            report.steps(results),
            *(
                f"Failed requests through {r.gateway} (status 0: no answer):\n{report.failures(r)}"
                for r in results
                if r.failed
            ),
        ]
    )
    (out / "summary.md").write_text(text + "\n")
    terminalreporter.write_sep("=", "swarm scaling scenario")
    terminalreporter.write_line(text)
    terminalreporter.write_line(f"written to {out / 'summary.md'}")
