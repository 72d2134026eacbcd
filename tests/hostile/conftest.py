"""Fixtures of the hostile-upstream suite: the scripted upstream, real servers, both gateways.

Every case runs once per gateway (`[ours]`, `[nginx]` in test ids). pytest groups the cases
by gateway, so one gateway process of each kind serves all the scripted cases; cases with a
real server as upstream start their own gateway in front of it. Everything started here is a
child process stopped by its pid when its fixture ends, or the upstream's thread.
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
from tests.hostile import real_servers
from tests.hostile.board import CaseBoard
from tests.hostile.cases import Note
from tests.hostile.gateways import (
    GATEWAYS,
    ROOT,
    SETTINGS,
    Gateway,
    GatewayFactory,
    in_ci,
    nginx_missing,
    running,
)
from tests.hostile.upstream import ScriptedUpstream

BOARD = pytest.StashKey[CaseBoard]()
NOTE = pytest.StashKey[Note]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = nginx_missing()
    if reason is None:
        return
    needs_nginx = [
        item
        for item in items
        if item.get_closest_marker("hostile") is not None
        and (_gateway(item) == "nginx" or item.get_closest_marker("hostile_nginx_upstream"))
    ]
    if not needs_nginx:
        return
    if in_ci():
        pytest.exit(f"the hostile-upstream suite must run against nginx here, but {reason}", 4)
    skip = pytest.mark.skip(reason=f"hostile-upstream cases need nginx: {reason}")
    for item in needs_nginx:
        item.add_marker(skip)


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
        board.record(number, title, gateway, outcome, note.got, note.declared)
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


@pytest.fixture(scope="session", params=GATEWAYS)
def gateway_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


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
    gateway_name: str, upstream: ScriptedUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """The gateway under test in front of both listeners of the scripted upstream."""
    log_dir = tmp_path_factory.mktemp(f"gateway-{gateway_name}")
    with running(gateway_name, upstream.ports, log_dir) as gateway:
        yield gateway


@pytest.fixture
def gateway_to(gateway_name: str, tmp_path: Path) -> Iterator[GatewayFactory]:
    """`gateway_to(ports)` (or `gateway_to(ports, {"SETTING": value})`): a gateway of the kind
    under test in front of other upstreams, or with other settings, for one test."""
    with contextlib.ExitStack() as stack:
        yield GatewayFactory(gateway_name, tmp_path, stack)


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
