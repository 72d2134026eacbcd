"""The suite-results plugin, run on a small suite of its own: what results.json says per case."""

import json
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ("pytester",)

CONFTEST = """
import dataclasses
import pytest

@dataclasses.dataclass(frozen=True)
class Spec:
    name: str

def pytest_configure(config):
    config.addinivalue_line("markers", "scenario(number, title): its scenario")

def pytest_generate_tests(metafunc):
    if "gateway_spec" in metafunc.fixturenames:
        specs = [Spec("ours"), Spec("theirs-x2")]
        metafunc.parametrize("gateway_spec", specs, ids=[s.name for s in specs])

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")
"""

SUITE = """
import pytest

pytestmark = pytest.mark.scenario(1, "rotation")

def test_passes(gateway_spec, record_property):
    record_property("5. recovery (s)", "0.62" if gateway_spec.name == "ours" else "3.46")

def test_declared(gateway_spec):
    if gateway_spec.name == "theirs-x2":
        pytest.xfail("theirs-x2: <b>answers 502</b>")

@pytest.mark.xfail(strict=True, reason="declared but it passes")
def test_strict_xpass(gateway_spec):
    pass

def test_skipped(gateway_spec):
    pytest.skip("needs root")

def test_fails(gateway_spec):
    assert gateway_spec.name == "ours", "only ours rotates"

def test_teardown_error(gateway_spec, broken_teardown):
    pass

@pytest.mark.parametrize("size", [1, 2])
def test_sizes(gateway_spec, size):
    pass

def test_no_gateway():
    pass
"""


def run_suite(pytester: pytest.Pytester, out: Path, *args: str) -> dict[str, Any]:
    pytester.makeconftest(CONFTEST)
    pytester.mkdir("tests")
    pytester.mkdir("tests/contract")
    pytester.path.joinpath("tests/contract/test_suite.py").write_text(SUITE)
    pytester.runpytest_inprocess(
        "-p", "toolkit.suite_results", "--suite-results-dir", str(out), *args
    )
    written = list(out.glob("contract/*/results.json"))
    assert len(written) == 1, written
    document: dict[str, Any] = json.loads(written[0].read_text())
    return document


def outcomes(document: dict[str, Any]) -> dict[str, dict[str, tuple[str, str | None]]]:
    return {
        case["id"].split("::")[1]: {
            gateway: (r["outcome"], r["reason"]) for gateway, r in case["results"].items()
        }
        for case in document["cases"]
    }


def test_each_case_has_one_outcome_per_gateway(pytester: pytest.Pytester, tmp_path: Path) -> None:
    document = run_suite(pytester, tmp_path / "results")
    got = outcomes(document)
    assert document["suite"] == "contract"
    assert document["gateways"] == ["ours", "theirs-x2"]
    assert got["test_passes"] == {"ours": ("pass", None), "theirs-x2": ("pass", None)}
    assert got["test_declared"]["ours"] == ("pass", None)
    assert got["test_declared"]["theirs-x2"] == ("deviation", "theirs-x2: <b>answers 502</b>")
    assert got["test_skipped"]["ours"] == ("skip", "needs root")
    assert got["test_fails"]["ours"] == ("pass", None)
    outcome, reason = got["test_fails"]["theirs-x2"]
    assert outcome == "fail"
    assert reason is not None
    assert "only ours rotates" in reason
    # A declared deviation that does not happen is a failure (strict xfail), not a pass.
    assert got["test_strict_xpass"]["ours"][0] == "fail"
    # A passing call with a broken teardown is no pass.
    outcome, reason = got["test_teardown_error"]["ours"]
    assert outcome == "fail"
    assert reason is not None
    assert "teardown" in reason
    # Other parameters stay in the case's id; the gateway's part goes.
    assert got["test_sizes[1]"] == {"ours": ("pass", None), "theirs-x2": ("pass", None)}
    assert "test_no_gateway" not in got
    assert {case["group"] for case in document["cases"]} == {"1. rotation"}
    assert document["measurements"] == {"5. recovery (s)": {"ours": "0.62", "theirs-x2": "3.46"}}


def test_states_machine_date_and_how_it_ran(pytester: pytest.Pytester, tmp_path: Path) -> None:
    document = run_suite(pytester, tmp_path / "results", "-k", "passes")
    assert document["machine"]["nproc"] >= 1
    assert document["machine"]["summary"]
    assert document["started_at"].endswith("Z")
    assert document["finished_at"] >= document["started_at"]
    assert "-k" in document["pytest_args"]
    assert document["exit_status"] == 0
    # Deselected tests are not in the results: the scorecard shows what ran.
    assert [case["id"].split("::")[1] for case in document["cases"]] == ["test_passes"]


def test_a_run_without_gateway_tests_writes_nothing(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    pytester.runpytest_inprocess(
        "-p", "toolkit.suite_results", "--suite-results-dir", str(tmp_path / "results")
    )
    assert not (tmp_path / "results").exists()
