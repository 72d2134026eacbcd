import asyncio
import time

import pytest

from toolkit.tests.conftest import Server
from toolkit.waiting import (
    ConditionTimeout,
    answers_200,
    http_status,
    wait_until,
    wait_until_async,
)


class TestWaitUntil:
    def test_returns_the_first_truthy_value(self) -> None:
        values = iter([None, False, "ready"])

        assert wait_until(lambda: next(values), timeout=1.0, interval=0.0, what="x") == "ready"

    def test_times_out_naming_the_condition(self) -> None:
        started = time.monotonic()

        with pytest.raises(ConditionTimeout, match="waiting for the moon"):
            wait_until(lambda: None, timeout=0.2, interval=0.01, what="the moon")

        assert time.monotonic() - started < 1.0

    def test_a_timeout_is_a_test_failure_not_an_error(self) -> None:
        assert issubclass(ConditionTimeout, AssertionError)

    def test_retried_errors_mean_not_yet_and_the_last_one_is_named(self) -> None:
        def refused() -> bool:
            raise ConnectionRefusedError("nothing listens")

        with pytest.raises(ConditionTimeout, match="nothing listens"):
            wait_until(refused, timeout=0.1, interval=0.01, what="x", retry_on=(OSError,))

    def test_a_retried_error_then_success_returns(self) -> None:
        calls = iter(range(3))

        def probe() -> bool:
            if next(calls) == 0:
                raise ConnectionResetError("not yet")
            return True

        assert wait_until(probe, timeout=1.0, interval=0.0, what="x", retry_on=(OSError,))

    def test_any_other_error_ends_the_wait_at_once(self) -> None:
        started = time.monotonic()

        def exited() -> bool:
            raise RuntimeError("the server exited")

        with pytest.raises(RuntimeError, match="exited"):
            wait_until(exited, timeout=10.0, what="x", retry_on=(OSError,))

        assert time.monotonic() - started < 1.0


class TestWaitUntilAsync:
    def test_returns_once_the_condition_holds(self) -> None:
        values = iter([None, False, 3])

        assert (
            asyncio.run(wait_until_async(lambda: next(values), timeout=1.0, interval=0.0, what="x"))
            == 3
        )

    def test_times_out_naming_the_condition(self) -> None:
        with pytest.raises(ConditionTimeout, match="waiting for 300 answers"):
            asyncio.run(
                wait_until_async(lambda: False, timeout=0.1, interval=0.01, what="300 answers")
            )


class TestHealthProbe:
    def test_a_200_answers(self, server: Server) -> None:
        server.answers.routes["/health"] = (200, b"{}")

        assert answers_200(f"{server.url}/health")

    def test_another_status_is_reported_and_does_not_count(self, server: Server) -> None:
        server.answers.routes["/health"] = (503, b"{}")

        assert http_status(f"{server.url}/health") == 503
        assert not answers_200(f"{server.url}/health")

    def test_nothing_listening_is_an_oserror_and_does_not_count(self, closed_port_url: str) -> None:
        with pytest.raises(OSError, match="refused"):
            http_status(f"{closed_port_url}/health")
        assert not answers_200(f"{closed_port_url}/health")
