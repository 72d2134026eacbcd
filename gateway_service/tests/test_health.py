"""Passive and active health transitions, with time injected (no real sleeps)."""

import pytest

from gateway_service.backends import Backend, Balancer, HealthPolicy
from gateway_service.settings import parse_storage_url
from gateway_service.tests.conftest import Stack, StackFactory
from gateway_service.upstream import UpstreamError

pytestmark = pytest.mark.anyio


def host(backend: Backend | None) -> str:
    assert backend is not None
    return backend.storage.host


def balancer(**policy: float) -> Balancer:
    storages = tuple(parse_storage_url(f"http://storage{i}:8000") for i in (1, 2, 3))
    return Balancer.local(storages, HealthPolicy(**policy))  # type: ignore[arg-type]


class TestPassive:
    def test_one_failure_takes_a_service_out_for_fail_timeout_by_default(self) -> None:
        lb = balancer()
        backend = lb.backends[0]
        lb.record_failure(backend, now=100.0, reason="refused")
        assert not backend.available(100.0)
        assert not backend.available(109.9)
        assert backend.available(110.0)

    def test_max_fails_counts_failures_within_fail_timeout(self) -> None:
        lb = balancer(max_fails=3, fail_timeout=10.0)
        backend = lb.backends[0]
        lb.record_failure(backend, now=100.0, reason="x")
        lb.record_failure(backend, now=105.0, reason="x")
        assert backend.available(105.0)
        lb.record_failure(backend, now=109.0, reason="x")
        assert not backend.available(109.0)

    def test_failures_older_than_fail_timeout_are_forgotten(self) -> None:
        lb = balancer(max_fails=2, fail_timeout=10.0)
        backend = lb.backends[0]
        lb.record_failure(backend, now=100.0, reason="x")
        lb.record_failure(backend, now=111.0, reason="x")
        assert backend.available(111.0)

    def test_successes_in_between_do_not_forgive_failures_within_fail_timeout(self) -> None:
        # nginx-tests' upstream.t: a server failing every third request goes out at the third.
        lb = balancer(max_fails=3, fail_timeout=10.0)
        backend = lb.backends[0]
        for now in (100.0, 101.0, 102.0):
            lb.record_success(backend, now=now)
            lb.record_success(backend, now=now + 0.1)
            assert backend.available(now + 0.2)
            lb.record_failure(backend, now=now + 0.2, reason="x")
        assert not backend.available(102.2)

    def test_pick_skips_banned_services_and_returns_to_them_after(self) -> None:
        lb = balancer()
        lb.record_failure(lb.backends[1], now=100.0, reason="x")
        assert [host(lb.pick(105.0)) for _ in range(4)] == [
            "storage1",
            "storage3",
            "storage1",
            "storage3",
        ]
        assert [host(lb.pick(110.0)) for _ in range(3)] == ["storage1", "storage2", "storage3"]

    def test_pick_skips_what_the_request_already_tried(self) -> None:
        lb = balancer()
        first = lb.pick(1.0)
        assert first is not None
        second = lb.pick(1.0, tried=[first, lb.backends[1]])
        assert host(second) == "storage3"
        assert lb.pick(1.0, tried=lb.backends) is None


class TestActive:
    def test_fall_bad_probes_take_a_service_out(self) -> None:
        lb = balancer(fall=2)
        backend = lb.backends[0]
        lb.record_probe(backend, ok=False, latency=0.01, now=1.0, wall_time=1.0)
        assert backend.available(1.0)
        lb.record_probe(backend, ok=False, latency=0.01, now=2.0, wall_time=2.0)
        assert not backend.available(2.0)
        assert backend.consecutive_failures == 2

    def test_rise_good_probes_bring_it_back(self) -> None:
        lb = balancer(fall=1, rise=3)
        backend = lb.backends[0]
        lb.record_probe(backend, ok=False, latency=0.01, now=1.0, wall_time=1.0)
        for now in (2.0, 3.0):
            lb.record_probe(backend, ok=True, latency=0.01, now=now, wall_time=now)
            assert not backend.available(now)
        lb.record_probe(backend, ok=True, latency=0.01, now=4.0, wall_time=4.0)
        assert backend.available(4.0)

    def test_a_bad_probe_in_between_restarts_the_rise(self) -> None:
        lb = balancer(fall=1, rise=2)
        backend = lb.backends[0]
        for ok in (False, True, False, True):
            lb.record_probe(backend, ok=ok, latency=0.01, now=1.0, wall_time=1.0)
        assert not backend.available(1.0)

    def test_recovery_seen_by_probes_lifts_an_older_passive_ban(self) -> None:
        lb = balancer(fall=1, rise=1, fail_timeout=10.0)
        backend = lb.backends[0]
        lb.record_failure(backend, now=100.0, reason="refused")
        lb.record_probe(backend, ok=False, latency=0.01, now=101.0, wall_time=1.0)
        lb.record_probe(backend, ok=True, latency=0.01, now=102.0, wall_time=2.0)
        assert backend.available(102.0)

    def test_good_probes_alone_do_not_lift_a_passive_ban(self) -> None:
        # /health can be green while /data fails (the `error` fault): only a real
        # down-then-up seen by the checker outranks what requests saw.
        lb = balancer(fail_timeout=10.0)
        backend = lb.backends[0]
        lb.record_failure(backend, now=100.0, reason="HTTP 500")
        for now in (101.0, 102.0, 103.0):
            lb.record_probe(backend, ok=True, latency=0.01, now=now, wall_time=now)
        assert not backend.available(103.0)


class TestChecker:
    async def test_probe_records_result_latency_and_time(self, stack: Stack) -> None:
        backend = stack.gateway.balancer.backends[2]
        stack.storage("storage3").health_status = 503
        assert await stack.gateway.health.probe(backend) is False
        assert backend.last_checked == 1_795_500_000.0
        assert backend.probe_fails == 1

    async def test_unreachable_service_fails_its_probe(self, stack: Stack) -> None:
        stack.storage("storage1").health_status = 200
        backend = stack.gateway.balancer.backends[0]

        async def refuse(request: bytes, connect_timeout: float, read_timeout: float) -> None:
            raise UpstreamError("connect_refused", "connection refused")

        stack.storage("storage1").request = refuse  # type: ignore[assignment,method-assign]
        assert await stack.gateway.health.probe(backend) is False

    async def test_a_dead_service_leaves_rotation_with_no_client_traffic(
        self, make_stack: StackFactory
    ) -> None:
        stack = make_stack(health_interval=2.0, health_fall=2, health_rise=2)
        checker = stack.gateway.health
        backend = stack.gateway.balancer.backends[0]
        stack.storage("storage1").health_status = 503
        await checker.probe(backend)
        # Settling: the confirming probe comes after a quarter interval, not a whole one.
        assert checker.next_delay(backend) == 0.5
        await checker.probe(backend)
        assert not backend.available(stack.clock())
        assert checker.next_delay(backend) == 2.0
        assert stack.storage("storage1").data_requests == []

    async def test_the_checker_loop_follows_its_schedule(self, make_stack: StackFactory) -> None:
        stack = make_stack(health_interval=2.0, health_fall=2, health_rise=2)
        checker = stack.gateway.health
        backend = stack.gateway.balancer.backends[0]
        stack.storage("storage1").health_status = 503
        delays: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            delays.append(seconds)
            if len(delays) == 3:
                stack.storage("storage1").health_status = 200
            if len(delays) == 6:
                raise _Stop

        checker.sleep = fake_sleep
        with pytest.raises(_Stop):
            await checker.run(backend)
        # bad (settling), bad (now down), bad, good (rising), good (up), good
        assert delays == [0.5, 2.0, 2.0, 0.5, 2.0, 2.0]
        assert backend.available(stack.clock())

    async def test_interval_zero_disables_active_checks(self, make_stack: StackFactory) -> None:
        stack = make_stack(health_interval=0)
        stack.gateway.health.start()
        assert stack.gateway.health._tasks == {}


class _Stop(Exception):
    pass
