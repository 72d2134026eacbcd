"""Fixtures for the contract suite: images, one stack per gateway, a clean stack per test."""

import socket
from collections.abc import Callable, Iterator

import pytest

from tests.harness import docker_env
from tests.harness.gateways import SEVERAL_WORKERS, STORAGE_IMAGE, GatewaySpec, selected
from tests.harness.images import ImageError, build_images, require_images
from tests.harness.report import SCOREBOARD
from tests.harness.stack import Stack
from tests.harness.wire import ETH_P_ALL, Wire


def gateways_under_test(config: pytest.Config) -> tuple[GatewaySpec, ...]:
    try:
        return selected(config.getoption("--gateways"), config.getoption("--gateway-file"))
    except ValueError as error:
        raise pytest.UsageError(f"gateways: {error}") from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Session scope: pytest groups the tests by gateway and keeps one stack alive at a time.
    if "gateway_spec" in metafunc.fixturenames:
        specs = gateways_under_test(metafunc.config)
        if metafunc.definition.get_closest_marker("several_workers") is not None:
            # The scenarios that sharing state across workers could break run again with
            # several workers, for every gateway that can be told how many to run.
            specs += tuple(s.with_workers(SEVERAL_WORKERS) for s in specs if s.takes_workers)
        metafunc.parametrize("gateway_spec", specs, ids=[s.name for s in specs], scope="session")


@pytest.fixture(scope="session")
def images(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Build the images once per run (`make images`) and check the ones under test exist."""
    engine = docker_env.client()
    try:
        docker_env.remove_orphans(engine)
        docker_env.install_cleanup()
        log = tmp_path_factory.getbasetemp() / "make-images.log"
        build_images(log)
        wanted = [
            STORAGE_IMAGE,
            *(s.image for s in gateways_under_test(request.config)),
        ]
        require_images(engine, wanted)
    except ImageError as error:
        pytest.fail(str(error), pytrace=False)
    finally:
        engine.close()


@pytest.fixture(scope="session")
def running_stack(gateway_spec: GatewaySpec, images: None) -> Iterator[Stack]:
    stack = Stack(gateway_spec)
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


@pytest.fixture
def stack(running_stack: Stack) -> Stack:
    """The stack in its known state: all three storage services up, healthy and in rotation."""
    running_stack.reset()
    return running_stack


@pytest.fixture
def measure(
    request: pytest.FixtureRequest, gateway_spec: GatewaySpec
) -> Callable[[str, str], None]:
    """Record a figure for the end-of-run table (and the junit XML) under this gateway."""

    def record(name: str, value: str) -> None:
        request.config.stash[SCOREBOARD].measure(gateway_spec.name, name, value)
        request.node.user_properties.append((name, value))

    return record


@pytest.fixture
def wire(stack: Stack) -> Callable[[], Wire]:
    """A factory of captures of gateway -> storage traffic; skips where raw sockets are denied."""
    try:
        probe = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
    except PermissionError:
        pytest.skip(
            "this check watches the stack's private network and needs CAP_NET_RAW "
            "(run the suite as root on the Docker host)"
        )
    probe.close()
    return stack.wire


@pytest.fixture
def deviation(request: pytest.FixtureRequest, gateway_spec: GatewaySpec) -> Callable[[str], None]:
    """`deviation("name")`: this check is a known departure for some gateways (GatewaySpec.
    deviations); for those it runs as a strict xfail carrying the reason."""

    def declare(name: str) -> None:
        reason = gateway_spec.deviations.get(name)
        if reason is not None:
            request.applymarker(
                pytest.mark.xfail(strict=True, reason=f"{gateway_spec.name}: {reason}")
            )

    return declare
