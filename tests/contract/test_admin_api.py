"""Scenario 17: the admin API refuses unsafe input and changes nothing (issue 19).

Our gateway's admin API (capabilities.runtime_api = "gateway": ADMIN_PORT, a Bearer token) is
checked with what it must refuse: no token, a wrong token, an unknown backend, a URL that is not
http://host:port, a weight out of range. Each gets a 4xx, and afterwards the backends are as
they were and all three still serve. HAProxy's and Caddy's runtime APIs take no token at all
(their descriptions say to keep them on a private address); nginx open source has none.
"""

from typing import Any

import httpx
import pytest

from tests.harness.gateways import GatewaySpec
from tests.harness.runtime_api import bearer
from tests.harness.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.scenario(17, "admin API, unsafe input")]

UNKNOWN = "http://storage9:8000"
CASES: list[tuple[str, str, str, dict[str, Any] | None, dict[str, str]]] = [
    # (what, method, path, JSON body, headers)
    ("no token", "GET", "/admin/backends", None, {}),
    ("no token", "POST", "/admin/backends/drain", {"url": "http://storage2:8000"}, {}),
    ("wrong token", "POST", "/admin/backends/drain", {"url": "http://storage2:8000"}, bearer("x")),
    ("not bearer", "GET", "/admin/backends", None, {"Authorization": "Basic YWRtaW46YWRtaW4="}),
    ("unknown backend", "POST", "/admin/backends/drain", {"url": UNKNOWN}, bearer()),
    ("unknown backend", "DELETE", f"/admin/backends?url={UNKNOWN}", None, bearer()),
    ("unknown backend", "PUT", "/admin/backends/weight", {"url": UNKNOWN, "weight": 2}, bearer()),
    ("not http", "POST", "/admin/backends", {"url": "ftp://storage9:8000", "weight": 1}, bearer()),
    ("a path", "POST", "/admin/backends", {"url": f"{UNKNOWN}/x", "weight": 1}, bearer()),
    ("no URL", "POST", "/admin/backends", {"url": "storage9", "weight": 1}, bearer()),
    ("not JSON", "POST", "/admin/backends/drain", None, bearer()),
    (
        "weight < 0",
        "PUT",
        "/admin/backends/weight",
        {"url": "http://storage2:8000", "weight": -1},
        bearer(),
    ),
    (
        "weight too big",
        "PUT",
        "/admin/backends/weight",
        {"url": "http://storage2:8000", "weight": 10**9},
        bearer(),
    ),
    (
        "weight not a number",
        "POST",
        "/admin/backends",
        {"url": UNKNOWN, "weight": "heavy"},
        bearer(),
    ),
]


def _expected(case: str) -> set[int]:
    """401 without the right token, 404 for a backend it does not have, else a 400 (422)."""
    if case.startswith(("no token", "wrong token", "not bearer")):
        return {401}
    if case.startswith("unknown backend"):
        return {404}
    return {400, 422}


@pytest.fixture
def admin_stack(gateway_spec: GatewaySpec, request: pytest.FixtureRequest) -> Stack:
    """The stack, for a gateway with our admin API; skipped before the stack is reset for one
    without (the reset costs a gateway restart when the previous test changed anything)."""
    if gateway_spec.runtime_api != "gateway":
        pytest.skip(
            f"{gateway_spec.name} has no token-guarded admin API "
            f"(capabilities.runtime_api = {gateway_spec.runtime_api!r})"
        )
    stack: Stack = request.getfixturevalue("stack")
    return stack


def _backends(stack: Stack) -> list[tuple[str, int, str]]:
    response = httpx.get(f"{stack.admin_url}/admin/backends", headers=bearer(), timeout=10)
    assert response.status_code == 200, response.text[:200]
    return sorted((b["url"], b["weight"], b["state"]) for b in response.json()["backends"])


def test_unsafe_input_gets_a_4xx_and_changes_nothing(admin_stack: Stack) -> None:
    """Every case in CASES is refused with a 4xx; the backends and the rotation are unchanged."""
    stack = admin_stack
    before = _backends(stack)

    answers = {}
    with httpx.Client(base_url=stack.admin_url, timeout=10) as client:
        for what, method, path, body, headers in CASES:
            response = client.request(method, path, json=body, headers=headers)
            answers[f"{what}: {method} {path}"] = response.status_code

    wrong = {case: code for case, code in answers.items() if code not in _expected(case)}
    assert wrong == {}, wrong
    assert _backends(stack) == before
    assert set(stack.instances(3)) == {"storage1", "storage2", "storage3"}


def test_the_admin_api_is_not_on_the_public_port(admin_stack: Stack) -> None:
    """With the token, on the port clients use: 404, as any unknown path."""
    response = admin_stack.get("/admin/backends", headers=bearer())

    assert response.status_code == 404
