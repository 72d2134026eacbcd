"""Real servers no one here wrote, as upstreams: each frames its answers its own way.

(Node's real 103 Early Hints is case 5, with the other 1xx cases.)
"""

import asyncio
from collections.abc import Callable

import pytest

from tests.hostile.cases import Load, Note, clean_after, describe, intact, is_own, load, new_id, run
from tests.hostile.client import Got, fetch
from tests.hostile.gateways import Gateway

pytestmark = pytest.mark.hostile

GatewayTo = Callable[[list[int]], Gateway]
MB = 1024 * 1024


@pytest.mark.hostile_case(44, "python -m http.server (HTTP/1.0)")
def test_python_http_server(gateway_to: GatewayTo, http_server_port: int, note: Note) -> None:
    """HTTP/1.0, a connection per answer: 1 MiB files, four at a time (http.server listens
    with a backlog of 5), each byte-identical."""
    gw = gateway_to([http_server_port])

    async def four() -> list[Got]:
        return list(
            await asyncio.gather(*(fetch(gw.port, "/data", new_id("pyhttp")) for _ in range(4)))
        )

    answers = run(four()) + run(four())
    whole = sum(intact(got, MB) for got in answers)
    others = [got.summary() for got in answers if not intact(got, MB)]
    note.got = f"{whole}/8 byte-identical" + (f"; {others[:3]}" if others else "")
    assert whole == 8, others


@pytest.mark.hostile_nginx_upstream
@pytest.mark.hostile_case(45, "nginx serving a 100 MB file")
def test_nginx_file_server(gateway_to: GatewayTo, nginx_files_port: int, note: Note) -> None:
    """sendfile and keep-alive: the same 100 MB file twice in a row, each byte-identical."""
    gw = gateway_to([nginx_files_port])
    size = 100 * MB
    answers = [run(fetch(gw.port, "/data", new_id("files"), timeout_s=60)) for _ in range(2)]
    whole = sum(intact(got, size) for got in answers)
    note.got = f"{whole}/2 byte-identical" + "".join(
        f"; {got.summary()}" for got in answers if not intact(got, size)
    )
    assert whole == 2


def _all_own(gw: Gateway, note: Note, result: Load) -> None:
    note.got = result.summary()
    assert not result.crosstalk(), f"answers carried another request's data: {result.crosstalk()}"
    wrong = [describe(got, rid) for rid, got in result.results if not is_own(got, rid)]
    assert not wrong, f"{len(wrong)} of {result.sent} did not get their own 200: {wrong[:5]}"
    assert not run(clean_after(gw.port))


def _real_load(gw: Gateway, target: str, tag: str) -> Load:
    return run(load(gw.port, target, tag=tag, per_user=5, budget_s=5.0, timeout_s=5.0))


@pytest.mark.hostile_case(46, "hypercorn (ASGI app, chunked)")
def test_hypercorn(gateway_to: GatewayTo, hypercorn_port: int, note: Note) -> None:
    gw = gateway_to([hypercorn_port])
    _all_own(gw, note, _real_load(gw, "/data", "hypercorn"))


@pytest.mark.hostile_case(47, "gunicorn (WSGI app, sync workers)")
def test_gunicorn(gateway_to: GatewayTo, gunicorn_port: int, note: Note) -> None:
    gw = gateway_to([gunicorn_port])
    _all_own(gw, note, _real_load(gw, "/data", "gunicorn"))


@pytest.mark.hostile_case(48, "Node http server (chunked)")
def test_node_http(gateway_to: GatewayTo, node_port: int, note: Note) -> None:
    gw = gateway_to([node_port])
    _all_own(gw, note, _real_load(gw, "/data?case=chunked", "node"))
