"""MAX_EJECTION_PERCENT: passive checks take out at most that share of the backends at once;
beyond it a failing backend stays in rotation (its requests fail over as retries)."""

from collections.abc import Callable

import pytest

from gateway_service.backends import Balancer
from gateway_service.tests.conftest import StackFactory
from gateway_service.tests.test_board import in_child, shared_balancer, wait_ok, worker_view


def capped(percent: int, workers: int = 1) -> Balancer:
    return shared_balancer(workers, fail_timeout=10.0, max_ejection_percent=percent)


def out(balancer: Balancer, now: float) -> list[str]:
    return [b.storage.host for b in balancer.backends if not b.available(now)]


class TestCap:
    def test_a_third_lets_one_of_three_out_and_keeps_the_next_in(self) -> None:
        balancer = capped(34)
        storage1, storage2, _ = balancer.backends
        balancer.record_failure(storage1, 100.0, "HTTP 500")
        balancer.record_failure(storage2, 100.0, "HTTP 500")
        assert out(balancer, 100.0) == ["storage1"]
        assert storage2.consecutive_failures == 1  # counted, but kept in rotation

    def test_once_the_ban_ends_another_may_go_out(self) -> None:
        balancer = capped(34)
        storage1, storage2, _ = balancer.backends
        balancer.record_failure(storage1, 100.0, "HTTP 500")
        balancer.record_failure(storage2, 105.0, "HTTP 500")
        balancer.record_failure(storage2, 110.0, "HTTP 500")
        assert out(balancer, 110.0) == ["storage2"]

    def test_zero_never_takes_a_backend_out_by_passive_checks(self) -> None:
        balancer = capped(0)
        for backend in balancer.backends:
            balancer.record_failure(backend, 100.0, "reset")
        assert out(balancer, 100.0) == []

    def test_the_default_lets_every_backend_out(self) -> None:
        balancer = capped(100)
        for backend in balancer.backends:
            balancer.record_failure(backend, 100.0, "reset")
        assert len(out(balancer, 100.0)) == 3

    def test_active_checks_are_not_capped(self) -> None:
        balancer = shared_balancer(1, fail_timeout=10.0, max_ejection_percent=0, fall=1)
        balancer.record_probe(balancer.backends[0], False, 0.001, 100.0, 0.0)
        assert out(balancer, 100.0) == ["storage1"]


class TestSeveralWorkers:
    def test_the_cap_counts_what_every_worker_took_out(self) -> None:
        balancer = capped(34, workers=2)

        def fail(index: int, backend: int) -> Callable[[], None]:
            def run() -> None:
                view = worker_view(balancer, index)
                view.record_failure(view.backends[backend], 100.0, "HTTP 500")

            return run

        wait_ok(in_child(fail(0, 0)))
        wait_ok(in_child(fail(1, 1)))
        assert out(balancer, 100.0) == ["storage1"]


@pytest.mark.anyio
class TestProxy:
    async def test_over_the_cap_failing_services_stay_in_and_requests_fail_over(
        self, make_stack: StackFactory
    ) -> None:
        stack = make_stack(max_ejection_percent=34)
        stack.storage("storage1").behaviour = 500
        stack.storage("storage2").behaviour = 503
        assert await stack.instances(6) == ["storage3"] * 6
        status = (await stack.client.get("/status")).json()
        states = [service["status"] for service in status["services"]]
        assert states == ["unavailable", "available", "available"]
        # Every failure of storage2 would have taken it out, and each was refused.
        refused = len(stack.storage("storage2").data_requests)
        assert refused >= 3
        text = (await stack.client.get("/metrics")).text
        assert f"gateway_passive_ejections_refused_total {refused}.0" in text
