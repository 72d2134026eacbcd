"""Waiting for a condition with a deadline: the one polling loop of the tools."""

import asyncio
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ConditionTimeout(AssertionError):
    """A condition did not hold before its deadline (in a test: a failure, not an error)."""


def _timed_out(what: str, timeout: float, last: object) -> ConditionTimeout:
    return ConditionTimeout(f"timed out after {timeout:.1f}s waiting for {what} (last: {last!r})")


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `probe` until it returns something other than None/False; return that value.

    An exception of a `retry_on` type counts as "not yet"; any other ends the wait at once (a
    probe raises to say the condition can no longer hold, e.g. the process it waits on exited).
    Raises ConditionTimeout naming `what` and the last value or error seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            last: object = probe()
        except retry_on as error:
            last = error
        else:
            if last is not None and last is not False:
                return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, last)
        time.sleep(interval)


async def wait_until_async(
    probe: Callable[[], T | None],
    *,
    # A deadline of its own, not asyncio.timeout: the failure must name the condition.
    timeout: float,  # noqa: ASYNC109
    what: str,
    interval: float = 0.05,
) -> T:
    """`wait_until` for a coroutine: the event loop runs between probes (probes must not block)."""
    deadline = time.monotonic() + timeout
    while True:
        last: object = probe()
        if last is not None and last is not False:
            return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, last)
        await asyncio.sleep(interval)


def http_status(url: str, timeout: float = 1.0) -> int:
    """The status code of GET `url`; raises OSError when nothing answers."""
    try:
        # `url` is the operator's or the harness's own (127.0.0.1 or a test container).
        with urllib.request.urlopen(url, timeout=timeout) as response:  # nosec B310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except http.client.HTTPException as error:
        raise OSError(f"{url}: {error!r}") from None


def answers_200(url: str, timeout: float = 1.0) -> bool:
    """Whether GET `url` answers 200 now (no answer: False)."""
    try:
        return http_status(url, timeout) == 200
    except OSError:
        return False
