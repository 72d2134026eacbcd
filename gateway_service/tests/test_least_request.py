"""BALANCING=least_request: the less busy of two backends drawn at random, by attempts in flight
counted on the board by every worker; round robin stays the default."""

import asyncio
import os
from collections import Counter

import pytest

from gateway_service.backends import Backend, Balancer, Balancing
from gateway_service.tests.conftest import Stack, StackFactory
from gateway_service.tests.fakes import eventually
from gateway_service.tests.test_board import in_child, shared_balancer, wait_ok, worker_view

LEAST = Balancing(least_request=True)


def hold(balancer: Balancer, target: Backend, count: int) -> None:
    """Start `count` attempts on `target` and leave them in flight."""
    others = [backend for backend in balancer.backends if backend is not target]
    for _ in range(count):
        assert balancer.pick(0.0, others) is target


def spread(balancer: Balancer, picks: int) -> Counter[str]:
    """`picks` attempts, each over before the next starts."""
    served: Counter[str] = Counter()
    for _ in range(picks):
        backend = balancer.pick(0.0)
        assert backend is not None
        served[backend.storage.host] += 1
        balancer.done(backend)
    return served


class TestOneProcess:
    def test_a_busy_backend_gets_nothing_while_the_others_are_idle(self) -> None:
        balancer = shared_balancer(1, LEAST)
        hold(balancer, balancer.backends[1], 2)
        served = spread(balancer, 300)
        assert served["storage2"] == 0
        # Two of three drawn at random: each idle one wins every draw it is in.
        assert 100 <= served["storage1"] <= 200

    def test_idle_backends_share_evenly(self) -> None:
        served = spread(shared_balancer(1, LEAST), 3000)
        assert all(850 <= served[f"storage{i}"] <= 1150 for i in (1, 2, 3)), served

    def test_done_takes_the_attempt_off(self) -> None:
        balancer = shared_balancer(1, LEAST)
        storage2 = balancer.backends[1]
        hold(balancer, storage2, 3)
        assert storage2.in_flight == 3
        for _ in range(3):
            balancer.done(storage2)
        assert storage2.in_flight == 0

    def test_what_the_request_tried_and_what_is_out_are_never_drawn(self) -> None:
        balancer = shared_balancer(1, LEAST, fail_timeout=10.0)
        storage1, storage2, storage3 = balancer.backends
        balancer.record_failure(storage3, 0.0, "reset")
        assert {balancer.pick(1.0, [storage1]) for _ in range(20)} == {storage2}
        assert balancer.pick(1.0, [storage1, storage2]) is None

    def test_with_nothing_in_rotation_each_is_tried_anyway(self) -> None:
        balancer = shared_balancer(1, LEAST, fail_timeout=10.0)
        for backend in balancer.backends:
            balancer.record_failure(backend, 0.0, "reset")
        tried: list[Backend] = []
        while (picked := balancer.pick(1.0, tried)) is not None:
            tried.append(picked)
        assert sorted(b.storage.host for b in tried) == ["storage1", "storage2", "storage3"]


class TestWithSlowStart:
    def test_a_ramping_backend_gets_its_share_of_a_fair_share(self) -> None:
        balancer = shared_balancer(1, Balancing(least_request=True, slow_start=10.0))
        storage2 = balancer.backends[1]
        balancer.record_failure(storage2, 100.0, "reset")  # back at 110 (FAIL_TIMEOUT 10)

        def served(now: float) -> int:
            count = 0
            for _ in range(3000):
                backend = balancer.pick(now)
                assert backend is not None
                count += backend is storage2
                balancer.done(backend)
            return count

        # A tenth, then half, then all of a third of 3000 (with every backend idle).
        assert 50 <= served(110.0) <= 170
        assert 400 <= served(115.0) <= 600
        assert 850 <= served(120.0) <= 1150


class TestSeveralWorkers:
    def test_attempts_in_flight_in_one_worker_steer_the_others(self) -> None:
        balancer = shared_balancer(3, LEAST)
        read_end, write_end = os.pipe()

        def busy() -> None:
            view = worker_view(balancer, 1)
            hold(view, view.backends[1], 4)  # and exits leaving them counted

        def worker() -> None:
            view = worker_view(balancer, 2)
            served = spread(view, 100)
            os.write(write_end, str(served["storage2"]).encode())

        wait_ok(in_child(busy))
        assert balancer.backends[1].in_flight == 4
        wait_ok(in_child(worker))
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            assert pipe.read() == b"0"

    def test_a_replacement_worker_starts_with_nothing_in_flight(self) -> None:
        balancer = shared_balancer(2, LEAST)

        def dies_busy() -> None:
            view = worker_view(balancer, 1)
            hold(view, view.backends[0], 5)

        wait_ok(in_child(dies_busy))
        assert balancer.backends[0].in_flight == 5

        def replacement() -> None:
            worker_view(balancer, 1)

        wait_ok(in_child(replacement))
        assert balancer.backends[0].in_flight == 0


@pytest.mark.anyio
class TestProxy:
    async def test_a_slow_service_gets_less_than_a_third(self, make_stack: StackFactory) -> None:
        stack = make_stack(balancing="least_request")
        slow = stack.storage("storage2")
        slow.gate = asyncio.Event()
        burst = []
        for _ in range(30):
            burst.append(asyncio.create_task(stack.client.get("/data")))
            await asyncio.sleep(0)  # let it reach the gateway: requests arrive one by one
        await eventually(lambda: sum(len(s.data_requests) for s in stack.storages) == 30)
        slow.gate.set()
        served = Counter([(await request).json()["instance"] for request in burst])
        assert served["storage2"] < 10, served
        assert sum(served.values()) == 30
        await self.assert_nothing_in_flight(stack)

    async def test_failed_attempts_are_taken_off(self, make_stack: StackFactory) -> None:
        stack = make_stack(balancing="least_request", max_fails=100)
        stack.storage("storage1").behaviour = 500
        stack.storage("storage3").behaviour = 502
        for _ in range(10):
            assert (await stack.client.get("/data")).json()["instance"] == "storage2"
        await self.assert_nothing_in_flight(stack)
        text = (await stack.client.get("/metrics")).text
        labels = 'address="10.0.0.2",backend="http://storage2:8000"'
        assert f"gateway_backend_in_flight{{{labels}}} 0.0" in text

    async def test_round_robin_is_the_default(self, stack: Stack) -> None:
        assert await stack.instances(6) == ["storage1", "storage2", "storage3"] * 2
        services = (await stack.client.get("/status")).json()["services"]
        assert all("in_flight" not in service for service in services)

    @staticmethod
    async def assert_nothing_in_flight(stack: Stack) -> None:
        services = (await stack.client.get("/status")).json()["services"]
        assert [service["in_flight"] for service in services] == [0, 0, 0]
