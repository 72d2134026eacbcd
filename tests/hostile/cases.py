"""What the cases share: request ids, concurrent load with cross-talk accounting, checks."""

import asyncio
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from tests.hostile.client import Got, fetch
from tests.hostile.upstream import POISON, good_body, pattern_digest

T = TypeVar("T")
_ID = re.compile(rb'"id": "([A-Za-z0-9._:-]*)"')


@dataclass
class Note:
    """What a case tells the table (the `note` fixture): what its client got, set before any
    assertion, and the declared difference it met, if any."""

    got: str | None = None
    declared: str | None = None


def rows(*table: tuple[Any, ...]) -> list[Any]:
    """pytest params from `(number, title, id, value, ...)` rows: one table row per case."""
    return [
        pytest.param(*values, marks=pytest.mark.hostile_case(number, title), id=case_id)
        for number, title, case_id, *values in table
    ]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def within(probe: Callable[[], T], timeout_s: float, interval_s: float = 0.05) -> T | None:
    """Poll `probe` until it returns something true, for at most `timeout_s`; that value, or
    None when the deadline passed first. A case then records what it saw before asserting."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)


async def within_async(
    probe: Callable[[], T], timeout_s: float, interval_s: float = 0.05
) -> T | None:
    """`within` inside a coroutine: the event loop runs between probes (probes must not block)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(interval_s)


def new_id(tag: str) -> str:
    """A unique X-Request-ID both gateways accept and forward: [A-Za-z0-9._:-]{1,128}."""
    return f"{tag}-{uuid.uuid4().hex[:16]}"


def owner(got: Got) -> str | None:
    """The request id a body names, if it is one of the upstream's bodies."""
    match = _ID.search(got.body[:512])
    return match.group(1).decode() if match else None


def is_own(got: Got, request_id: str) -> bool:
    """The final answer is a complete 200 carrying exactly this request's good body."""
    return got.status == 200 and got.complete and got.body == good_body(request_id)


def intact(got: Got, size: int) -> bool:
    """A complete 2xx whose body is exactly the upstream's `size`-byte pattern."""
    return got.ok_complete and got.body_len == size and got.sha256 == pattern_digest(size)


def carries_poison(got: Got) -> bool:
    return POISON in got.body


def describe(got: Got, request_id: str) -> str:
    """A short description of one answer, naming cross-talk for what it is."""
    if is_own(got, request_id):
        return "own 200"
    named = owner(got)
    if named is not None and named != request_id:
        return "UNSOLICITED body" if named.startswith("UNSOLICITED-") else "another's body"
    if carries_poison(got):
        return f"{got.status} poison body"
    return got.summary()


@dataclass
class Load:
    """Concurrent users, each sending requests one after another on fresh connections."""

    results: list[tuple[str, Got]] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.results)

    def tally(self) -> Counter[str]:
        return Counter(describe(got, request_id) for request_id, got in self.results)

    def crosstalk(self) -> list[str]:
        """Answers that carried another request's data: the one thing no gateway may do."""
        return [
            f"{request_id} got {describe(got, request_id)}"
            for request_id, got in self.results
            if (named := owner(got)) is not None and named != request_id
        ]

    def summary(self) -> str:
        parts = ", ".join(f"{n} {what}" for what, n in self.tally().most_common())
        return f"{self.sent} sent: {parts}"


async def load(
    port: int,
    target: str,
    *,
    tag: str,
    users: int = 8,
    per_user: int = 10,
    budget_s: float = 3.0,
    timeout_s: float = 1.5,
) -> Load:
    """`users` clients, each sending up to `per_user` requests; none starts after `budget_s`."""
    result = Load()
    deadline = time.monotonic() + budget_s

    async def user() -> None:
        for _ in range(per_user):
            if time.monotonic() > deadline:
                return
            request_id = new_id(tag)
            got = await fetch(port, target, request_id, timeout_s=timeout_s)
            result.results.append((request_id, got))

    await asyncio.gather(*(user() for _ in range(users)))
    return result


async def clean_after(port: int, requests: int = 4) -> list[str]:
    """Plain requests after a hostile case; what went wrong with them (empty when all fine)."""
    problems = []
    for _ in range(requests):
        request_id = new_id("after")
        got = await fetch(port, "/data?case=echo", request_id, timeout_s=5.0)
        if not is_own(got, request_id):
            problems.append(describe(got, request_id))
    return problems
