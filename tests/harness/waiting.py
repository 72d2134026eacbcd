"""Wait for a condition with a deadline: the suite's only way to let time pass."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ConditionTimeout(AssertionError):
    """A condition did not hold before its deadline (an assertion failure, not an error)."""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str,
) -> T:
    """Call `probe` until it returns something other than None/False; return that value.

    Raises ConditionTimeout naming `what` and the last value seen, so a failed wait says
    which condition never held.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        last = probe()
        if last is not None and last is not False:
            return last
        if time.monotonic() >= deadline:
            raise ConditionTimeout(
                f"timed out after {timeout:.1f}s waiting for {what} (last: {last!r})"
            )
        time.sleep(interval)
