"""SLOW_START: a backend back in rotation gets a share that grows from a tenth to its full share
over that many seconds, however it came back; with the default 0, nothing changes."""

import os
import time
from collections import Counter
from collections.abc import Callable

import pytest

from gateway_service.backends import Balancer, Balancing
from gateway_service.tests.conftest import Stack, StackFactory
from gateway_service.tests.test_board import (
    STORAGES,
    in_child,
    shared_balancer,
    wait_ok,
    worker_view,
)

WINDOW = 10.0


def ramped(workers: int = 1, **policy: float) -> Balancer:
    return shared_balancer(workers, Balancing(slow_start=WINDOW), fail_timeout=10.0, **policy)


def shares(balancer: Balancer, now: float, picks: int) -> Counter[str]:
    served: Counter[str] = Counter()
    for _ in range(picks):
        backend = balancer.pick(now)
        assert backend is not None
        served[backend.storage.host] += 1
    return served


def ban_storage2(balancer: Balancer, at: float) -> None:
    """A passive ban from `at`: storage2 is back in rotation at `at` + FAIL_TIMEOUT (10 s)."""
    balancer.record_failure(balancer.backends[1], at, "HTTP 500")
    assert not balancer.backends[1].available(at)


class TestDefault:
    def test_without_slow_start_a_returning_backend_gets_its_turn_at_once(self) -> None:
        balancer = shared_balancer(1, fail_timeout=10.0)
        ban_storage2(balancer, 100.0)
        picks = [balancer.pick(110.0) for _ in range(30)]
        assert [b.storage.host[-1] for b in picks if b] == list("123" * 10)


class TestRamp:
    def test_after_a_passive_ban_the_share_grows_from_a_tenth_to_full(self) -> None:
        balancer = ramped()
        ban_storage2(balancer, 100.0)
        # Its weight relative to the others' 1 each: 0.1, then 0.5, then full.
        first = shares(balancer, 110.0, 210)
        assert 9 <= first["storage2"] <= 10  # 0.1 / 2.1 of 210
        assert abs(first["storage1"] - first["storage3"]) <= 1
        middle = shares(balancer, 115.0, 250)
        assert 49 <= middle["storage2"] <= 51  # 0.5 / 2.5 of 250
        assert balancer.slow_start_share(balancer.backends[1], 115.0) == 0.5
        assert shares(balancer, 120.0, 30) == {"storage1": 10, "storage2": 10, "storage3": 10}
        assert balancer.slow_start_share(balancer.backends[1], 120.0) == 1.0

    def test_a_backend_back_from_a_drain_ramps_from_then(self) -> None:
        balancer = ramped()
        members = [(storage, storage.host) for storage in STORAGES]
        balancer.draining.add(STORAGES[1].url)
        balancer.replace(members, on_probation=False)
        balancer.draining.clear()
        balancer.replace(members, on_probation=False)  # what the admin API's undrain does
        # Drains are real time (the control process's monotonic clock), not the tests' made-up one.
        now = time.monotonic()
        assert balancer.slow_start_share(balancer.backends[1], now) < 0.2
        assert balancer.slow_start_share(balancer.backends[1], now + WINDOW) == 1.0

    def test_the_first_table_is_at_full_share_from_the_start(self) -> None:
        balancer = ramped()
        assert shares(balancer, 0.0, 30) == {"storage1": 10, "storage2": 10, "storage3": 10}

    def test_recovery_by_active_checks_starts_the_ramp_at_the_rise(self) -> None:
        balancer = ramped(rise=2, fall=1)
        storage2 = balancer.backends[1]
        balancer.record_probe(storage2, False, 0.001, 50.0, 0.0)
        assert not storage2.available(50.0)
        balancer.record_probe(storage2, True, 0.001, 60.0, 0.0)
        balancer.record_probe(storage2, True, 0.001, 61.0, 0.0)
        assert storage2.available(61.0)
        assert balancer.slow_start_share(storage2, 61.0) == 0.1
        assert balancer.slow_start_share(storage2, 66.0) == 0.5
        assert shares(balancer, 66.0, 250)["storage2"] in (49, 50, 51)

    def test_a_discovered_backend_ramps_from_its_first_good_probe(self) -> None:
        balancer = ramped()
        members = [(s, s.host) for s in STORAGES] + [(STORAGES[1], "10.0.0.9")]
        (new,), _ = balancer.replace(members, on_probation=True, now=200.0)
        assert not new.available(200.0)
        balancer.record_probe(new, True, 0.001, 205.0, 0.0)
        assert balancer.slow_start_share(new, 205.0) == 0.1
        assert balancer.slow_start_share(new, 215.0) == 1.0

    def test_a_backend_added_without_health_checks_ramps_from_when_it_was_added(self) -> None:
        balancer = ramped()
        members = [(s, s.host) for s in STORAGES] + [(STORAGES[1], "10.0.0.9")]
        (new,), _ = balancer.replace(members, on_probation=False, now=200.0)
        assert balancer.slow_start_share(new, 200.0) == 0.1
        assert 9 <= shares(balancer, 200.0, 310)["storage2"] - 100 <= 10

    def test_a_ramping_backend_alone_in_rotation_gets_every_request(self) -> None:
        balancer = ramped()
        ban_storage2(balancer, 100.0)
        for index in (0, 2):
            balancer.record_failure(balancer.backends[index], 111.0, "reset")
        assert shares(balancer, 111.0, 5) == {"storage2": 5}

    def test_a_retry_is_never_refused_for_a_ramping_backend(self) -> None:
        balancer = ramped()
        ban_storage2(balancer, 100.0)
        storage1, storage2, storage3 = balancer.backends
        assert balancer.pick(110.0, [storage1, storage3]) is storage2


class TestSeveralWorkers:
    def test_workers_share_one_ramp_started_by_the_control_process(self) -> None:
        balancer = ramped(workers=3, rise=1, fall=1)
        read_end, write_end = os.pipe()

        def control() -> None:
            balancer.board.attach_control()
            view = worker_view(balancer, 0)
            view.record_probe(view.backends[1], False, 0.001, 100.0, 0.0)
            view.record_probe(view.backends[1], True, 0.001, 110.0, 0.0)

        def worker(index: int) -> Callable[[], None]:
            def work() -> None:
                view = worker_view(balancer, index)
                picked = "".join(view.pick(115.0).storage.host[-1] for _ in range(125))  # type: ignore[union-attr]
                os.write(write_end, picked.encode())

            return work

        wait_ok(in_child(control))
        for pid in [in_child(worker(index)) for index in (1, 2)]:
            wait_ok(pid)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            served = Counter(pipe.read().decode())
        # Half its share 5 s into a 10 s ramp: 0.5 / 2.5 of the 250 picks of both workers.
        assert 49 <= served["2"] <= 51
        assert abs(served["1"] - served["3"]) <= 1


@pytest.mark.anyio
class TestReported:
    async def test_status_and_metrics_show_the_share(self, make_stack: StackFactory) -> None:
        stack = make_stack(slow_start=WINDOW, fail_timeout=10)
        stack.storage("storage2").behaviour = 500
        await stack.instances(3)
        stack.storage("storage2").behaviour = 200
        stack.clock.advance(15)  # back 5 s ago
        services = (await stack.client.get("/status")).json()["services"]
        assert [s["slow_start_share"] for s in services] == [1.0, 0.5, 1.0]
        text = (await stack.client.get("/metrics")).text
        assert 'gateway_backend_slow_start_share{address="10.0.0.2"' in text
        assert text.count("gateway_backend_slow_start_share{") == 3

    async def test_an_address_discovery_finds_ramps_from_when_it_joined(
        self, make_stack: StackFactory
    ) -> None:
        stack = make_stack(
            storage_services="http://storage:8000", slow_start=WINDOW, health_interval=0
        )
        stack.dns.records["storage"] = ["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4"]
        await stack.gateway.discovery.poll(stack.gateway.follow)
        served = Counter(await stack.instances(310))
        # A tenth of a share beside three full ones: 0.1 / 3.1 of 310.
        assert 9 <= served["storage@10.0.1.4"] <= 10, served
        stack.clock.advance(WINDOW)
        assert Counter(await stack.instances(40))["storage@10.0.1.4"] == 10

    async def test_by_default_neither_shows_it(self, stack: Stack) -> None:
        services = (await stack.client.get("/status")).json()["services"]
        assert all("slow_start_share" not in s for s in services)
        assert "slow_start_share" not in (await stack.client.get("/metrics")).text
