"""Fixtures of the hostile-upstream suite: the scripted upstream, real servers, the gateways.

Every case runs once per described gateway (`[gateway]`, `[nginx]`, `[haproxy]`, `[caddy]` and
a user's, by description name, in test ids; `--gateways` and `--gateway-file` choose them as
for the contract suite). pytest groups the cases by gateway, so one gateway of each kind serves
all the scripted cases; cases with a real server as upstream start their own gateway in front
of it. Everything started here is a child process stopped by its pid when its fixture ends, a
container stopped by its id, or the upstream's thread.

A gateway's `[hostile_deviations]` name cases (`case_key` of their title) that run for it as a
strict xfail carrying the reason, or behaviours (`BEHAVIOURS`) the case then checks instead.
"""

import contextlib
import signal
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bench.processes import Children
from bench.targets import StoragePool
from tests.conftest import _outcome
from tests.harness.gateways import selected
from tests.hostile import real_servers
from tests.hostile.board import CaseBoard
from tests.hostile.cases import Note
from tests.hostile.gateways import (
    BEHAVIOURS,
    ROOT,
    SETTINGS,
    Gateway,
    GatewayFactory,
    case_key,
    in_ci,
    missing,
    nginx_missing,
    running,
)
from tests.hostile.upstream import ScriptedUpstream
from toolkit.gateways import Gateway as Description

HERE = Path(__file__).resolve().parent
BOARD = pytest.StashKey[CaseBoard]()
NOTE = pytest.StashKey[Note]()
DESCRIPTIONS = pytest.StashKey[dict[str, Description]]()
DECLARED = pytest.StashKey[str]()
"""On an item: the reason of the declared deviation it runs as a strict xfail for."""


def _descriptions(config: pytest.Config) -> dict[str, Description]:
    """The gateways under test, by name: the contract suite's choice and loading, reused."""
    if DESCRIPTIONS not in config.stash:
        try:
            specs = selected(config.getoption("--gateways"), config.getoption("--gateway-file"))
        except ValueError as error:
            raise pytest.UsageError(f"gateways: {error}") from None
        config.stash[DESCRIPTIONS] = {s.description.name: s.description for s in specs}
    return config.stash[DESCRIPTIONS]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Session scope: pytest groups the cases by gateway, one gateway process at a time.
    if "gateway_name" in metafunc.fixturenames:
        names = list(_descriptions(metafunc.config))
        metafunc.parametrize("gateway_name", names, ids=names, scope="session")


# First, so it sees every collected case before `-k` or `-m` deselect some.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    hostile = [item for item in items if item.get_closest_marker("hostile") is not None]
    if not hostile:
        return
    descriptions = _descriptions(config)
    files_with_cases = {p for p in HERE.glob("test_*.py") if "hostile_case" in p.read_text()}
    if files_with_cases <= {Path(str(item.path)) for item in hostile}:
        # Only a run that collected every case can tell a misspelt name from one it left out.
        _check_deviation_names(descriptions, hostile)
    for item in hostile:
        gateway = _gateway(item)
        case = item.get_closest_marker("hostile_case")
        if gateway is None:
            continue
        reason = (
            None
            if case is None
            else descriptions[gateway].hostile_deviations.get(case_key(case.args[1]))
        )
        if reason is not None:
            item.stash[DECLARED] = reason
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"{gateway}: {reason}"))
        cannot = missing(gateway) or (
            nginx_missing() if item.get_closest_marker("hostile_nginx_upstream") else None
        )
        if cannot is not None:
            if in_ci():
                pytest.exit(f"the hostile-upstream suite must run against {gateway}: {cannot}", 4)
            item.add_marker(pytest.mark.skip(reason=f"hostile-upstream cases: {cannot}"))


def _check_deviation_names(descriptions: dict[str, Description], items: list[pytest.Item]) -> None:
    """A `[hostile_deviations]` name that is no case's and no behaviour's is a typo: say so,
    rather than let the case it meant fail or pass unexplained."""
    markers = [item.get_closest_marker("hostile_case") for item in items]
    titles: dict[str, set[str]] = {}
    for marker in markers:
        if marker is not None:
            titles.setdefault(case_key(marker.args[1]), set()).add(marker.args[1])
    shared = {key: found for key, found in titles.items() if len(found) > 1}
    if shared:
        raise pytest.UsageError(f"hostile cases share a name in [hostile_deviations]: {shared}")
    cases = set(titles)
    for description in descriptions.values():
        unknown = sorted(set(description.hostile_deviations) - cases - BEHAVIOURS)
        if unknown:
            raise pytest.UsageError(
                f"{description.source}: [hostile_deviations] names no case or behaviour: "
                f"{', '.join(unknown)} (a case's name is its title in lower case, words joined "
                "by '-', e.g. 'three-pipelined-requests')"
            )


def _gateway(item: pytest.Item) -> str | None:
    spec = getattr(item, "callspec", None)
    value = spec.params.get("gateway_name") if spec is not None else None
    return value if isinstance(value, str) else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    case = item.get_closest_marker("hostile_case")
    gateway = _gateway(item)
    if case is None or gateway is None:
        return report
    if report.failed and isinstance(item, pytest.Function):
        for started in _gateways_of(item):
            report.sections.append((f"{started.name} log (last 40 lines)", started.log_tail()))
    outcome = _outcome(report)
    if outcome is not None:
        note = item.stash.get(NOTE, Note())
        number, title = case.args
        board = item.config.stash.setdefault(BOARD, CaseBoard())
        declared = note.declared or item.stash.get(DECLARED, None)
        board.record(number, title, gateway, outcome, note.got, declared)
    return report


def _gateways_of(item: pytest.Function) -> list[Gateway]:
    found: list[Gateway] = []
    gw = item.funcargs.get("gw")
    if isinstance(gw, Gateway):
        found.append(gw)
    factory = item.funcargs.get("gateway_to")
    if isinstance(factory, GatewayFactory):
        found += factory.started
    return found


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(BOARD, CaseBoard()).render()
    if not lines:
        return
    terminalreporter.section("hostile upstreams by gateway")
    for line in lines:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def _sigterm_unwinds() -> Iterator[None]:
    """A SIGTERM to pytest unwinds the fixtures, so every process they started is stopped."""

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def note(request: pytest.FixtureRequest) -> Note:
    """Record what the client got (`note.got = ...`) before asserting, for the table."""
    item_note = Note()
    request.node.stash[NOTE] = item_note
    return item_note


@pytest.fixture(scope="session")
def description(request: pytest.FixtureRequest, gateway_name: str) -> Description:
    """The description of the gateway under test (`gateway_name` is parametrized above)."""
    return _descriptions(request.config)[gateway_name]


@pytest.fixture(scope="session")
def upstream() -> Iterator[ScriptedUpstream]:
    scripted = ScriptedUpstream(listeners=2)
    try:
        scripted.start()
        yield scripted
    finally:
        scripted.stop()


@pytest.fixture(scope="session")
def gw(
    description: Description, upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """The gateway under test in front of both listeners of the scripted upstream."""
    log_dir = tmp_path_factory.mktemp(f"gateway-{description.name}")
    with running(description, upstream.ports, log_dir) as gateway:
        yield gateway


@pytest.fixture
def gateway_to(description: Description, tmp_path: Path) -> Iterator[GatewayFactory]:
    """`gateway_to(ports)` (or `gateway_to(ports, {"SETTING": value})`): a gateway of the kind
    under test in front of other upstreams, or with other settings, for one test."""
    with contextlib.ExitStack() as stack:
        yield GatewayFactory(description, tmp_path, stack)


@pytest.fixture(scope="session")
def real_kids(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Children]:
    """The real servers' processes, stopped by pid at the end of the session."""
    kids = Children(tmp_path_factory.mktemp("real-servers"))
    try:
        yield kids
    finally:
        kids.stop_all()


def _require(reason: str | None) -> None:
    if reason is not None:
        if in_ci():
            pytest.fail(f"must run in CI, but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def storage_ports(real_kids: Children) -> list[int]:
    """Two real storage services (storage_service, as the bench starts them): an upstream whose
    /health and /data answer at once, in processes of their own, so a slow answer is the
    gateway's doing, never the pytest process's."""
    pool = StoragePool(real_kids, replace(SETTINGS, storage_count=2), ROOT)
    pool.start_missing()
    return pool.ports


@pytest.fixture(scope="session")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


@pytest.fixture(scope="session")
def http_server_port(real_kids: Children, files_dir: Path) -> int:
    directory = files_dir / "http.server"
    real_servers.write_data_file(directory, 1024 * 1024)
    return real_servers.http_server(real_kids, directory)


@pytest.fixture(scope="session")
def nginx_files_port(real_kids: Children, files_dir: Path) -> int:
    _require(nginx_missing())
    directory = files_dir / "nginx"
    real_servers.write_data_file(directory, 100 * 1024 * 1024)
    return real_servers.nginx_files(real_kids, directory, real_kids.log_dir / "nginx-files")


@pytest.fixture(scope="session")
def hypercorn_port(real_kids: Children) -> int:
    return real_servers.hypercorn(real_kids)


@pytest.fixture(scope="session")
def gunicorn_port(real_kids: Children) -> int:
    return real_servers.gunicorn(real_kids)


@pytest.fixture(scope="session")
def node_port(real_kids: Children) -> int:
    reason = real_servers.node_missing()
    if reason is not None:
        pytest.skip(reason)  # CI has node; a machine without it skips only these cases
    return real_servers.node(real_kids)
