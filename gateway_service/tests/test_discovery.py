"""DNS discovery: one backend per address, following the name as it changes (resolver injected)."""

import asyncio
import json

import pytest

from gateway_service.backends import Balancer, HealthPolicy
from gateway_service.discovery import Discovery, system_resolver
from gateway_service.logs import EventLog
from gateway_service.settings import parse_storage_url
from gateway_service.tests.conftest import LogSink, Stack, StackFactory
from gateway_service.tests.fakes import eventually

pytestmark = pytest.mark.anyio

REPLICATED = "http://storage:8000"


def replicated(make_stack: StackFactory, **settings: object) -> Stack:
    return make_stack(storage_services=REPLICATED, **settings)


def addresses(stack: Stack) -> list[str]:
    return [backend.address for backend in stack.gateway.balancer.backends]


def events(stack: Stack, name: str) -> list[dict[str, object]]:
    stack.gateway.log.flush()
    lines = [json.loads(line) for line in stack.logs.text.splitlines()]
    return [line for line in lines if line["event"] == name]


async def rediscover(stack: Stack) -> None:
    await stack.gateway.discovery.poll(stack.gateway.follow)


class TestOneBackendPerAddress:
    async def test_a_name_with_three_addresses_is_three_backends_in_strict_rotation(
        self, make_stack: StackFactory
    ) -> None:
        stack = replicated(make_stack)
        assert addresses(stack) == ["10.0.1.1", "10.0.1.2", "10.0.1.3"]
        served = await stack.instances(6)
        assert served == [f"storage@10.0.1.{i}" for i in (1, 2, 3, 1, 2, 3)]

    async def test_requests_carry_the_name_as_host_not_the_address(
        self, make_stack: StackFactory
    ) -> None:
        stack = replicated(make_stack)
        await stack.instances(1)
        request = stack.storages[0].data_requests[0]
        assert b"\r\nhost: storage:8000\r\n" in request

    async def test_status_and_metrics_show_each_address_and_the_name_it_came_from(
        self, make_stack: StackFactory
    ) -> None:
        stack = replicated(make_stack)
        services = (await stack.client.get("/status")).json()["services"]
        assert [(s["url"], s["name"], s["address"]) for s in services] == [
            (REPLICATED, "storage", f"10.0.1.{i}:8000") for i in (1, 2, 3)
        ]
        metrics = (await stack.client.get("/metrics")).text
        for i in (1, 2, 3):
            assert (
                f'gateway_backend_up{{address="10.0.1.{i}",backend="{REPLICATED}"}} 1.0' in metrics
            )

    async def test_address_literals_are_not_looked_up(self, make_stack: StackFactory) -> None:
        stack = make_stack(storage_services="http://192.0.2.7:8000,http://[2001:db8::1]:8000")
        assert addresses(stack) == ["192.0.2.7", "2001:db8::1"]
        assert stack.dns.lookups == []
        services = (await stack.client.get("/status")).json()["services"]
        assert [s["address"] for s in services] == ["192.0.2.7:8000", "[2001:db8::1]:8000"]

    async def test_discovery_interval_0_connects_by_name_and_never_resolves(
        self, make_stack: StackFactory
    ) -> None:
        stack = replicated(make_stack, discovery_interval=0)
        assert addresses(stack) == ["storage"]
        await rediscover(stack)
        assert stack.dns.lookups == []
        services = (await stack.client.get("/status")).json()["services"]
        assert services[0]["address"] == "storage:8000"


class TestFollowingTheName:
    async def test_a_new_address_waits_for_its_first_good_probe_then_joins_the_rotation(
        self, make_stack: StackFactory
    ) -> None:
        stack = replicated(make_stack)
        stack.gateway.health.start()
        stack.dns.records["storage"].append("10.0.1.4")
        await rediscover(stack)
        new = stack.gateway.balancer.backends[3]
        assert new.address == "10.0.1.4"
        assert not new.available(stack.clock())  # discovered, not yet probed
        await eventually(lambda: new.available(stack.clock()))
        served = await stack.instances(4)
        assert sorted(served) == [f"storage@10.0.1.{i}" for i in (1, 2, 3, 4)]
        assert events(stack, "backend_up")[-1]["reason"] == "discovered: first good probe"
        await stack.gateway.health.stop()

    async def test_a_vanished_address_gets_no_new_requests_but_finishes_the_one_it_has(
        self, make_stack: StackFactory
    ) -> None:
        stack = replicated(make_stack)
        first = stack.storages[0]
        first.gate = asyncio.Event()
        in_flight = asyncio.create_task(stack.client.get("/data"))
        await eventually(lambda: bool(first.data_requests))
        stack.dns.records["storage"].remove("10.0.1.1")
        await rediscover(stack)
        assert addresses(stack) == ["10.0.1.2", "10.0.1.3"]
        assert first.closed
        served = await stack.instances(4)
        assert set(served) == {"storage@10.0.1.2", "storage@10.0.1.3"}
        first.gate.set()
        response = await in_flight
        assert response.status_code == 200
        assert response.json()["instance"] == "storage@10.0.1.1"
        assert [s["address"] for s in (await stack.client.get("/status")).json()["services"]] == [
            "10.0.1.2:8000",
            "10.0.1.3:8000",
        ]

    async def test_a_failed_resolution_keeps_the_last_good_set_and_is_logged_once(
        self, make_stack: StackFactory
    ) -> None:
        stack = replicated(make_stack)
        good = stack.dns.records.pop("storage")
        await rediscover(stack)
        await rediscover(stack)
        assert addresses(stack) == good
        (failed,) = events(stack, "discovery_failed")
        assert failed["storage"] == REPLICATED
        assert failed["kept"] == good
        assert "Name or service not known" in str(failed["error"])
        assert len(await stack.instances(3)) == 3
        stack.dns.records["storage"] = good
        await rediscover(stack)
        assert len(events(stack, "discovery_recovered")) == 1

    async def test_a_name_that_never_resolved_serves_503_until_it_does(
        self, make_stack: StackFactory
    ) -> None:
        stack = make_stack(storage_services="http://later:8000")
        stack.gateway.health.start()
        assert addresses(stack) == []
        response = await stack.client.get("/data")
        assert response.status_code == 503
        stack.dns.records["later"] = ["10.0.2.1"]
        await rediscover(stack)
        await eventually(lambda: stack.gateway.balancer.in_rotation(stack.clock()) == 1)
        assert await stack.instances(1) == ["later"]
        await stack.gateway.health.stop()

    async def test_the_rotation_goes_on_where_it_was_when_the_set_changes(
        self, make_stack: StackFactory
    ) -> None:
        stack = replicated(make_stack, health_interval=0)  # no checks: new addresses join at once
        assert await stack.instances(1) == ["storage@10.0.1.1"]
        stack.dns.records["storage"] = ["10.0.1.2", "10.0.1.3", "10.0.1.5"]
        await rediscover(stack)
        served = await stack.instances(6)
        assert served == [f"storage@10.0.1.{i}" for i in (2, 3, 5, 2, 3, 5)]

    async def test_unchanged_answers_change_nothing(self, make_stack: StackFactory) -> None:
        stack = replicated(make_stack)
        before = list(stack.gateway.balancer.backends)
        stack.dns.records["storage"] = list(reversed(stack.dns.records["storage"]))
        await rediscover(stack)
        assert stack.gateway.balancer.backends == before
        assert events(stack, "backends_changed") == []


class TestProbation:
    def balancer(self) -> Balancer:
        storage = parse_storage_url(REPLICATED)
        lb = Balancer.local([(storage, "10.0.1.1")], HealthPolicy())
        lb.replace([(storage, "10.0.1.1"), (storage, "10.0.1.2")], on_probation=True)
        return lb

    def test_a_bad_first_probe_keeps_a_new_backend_out(self) -> None:
        lb = self.balancer()
        new = lb.backends[1]
        lb.record_probe(new, False, 0.01, now=1.0, wall_time=0.0)
        assert not new.available(1.0)
        assert [lb.pick(1.0) for _ in range(3)] == [lb.backends[0]] * 3

    def test_panic_mode_does_not_reach_a_backend_that_never_answered_a_probe(self) -> None:
        lb = self.balancer()
        old, _ = lb.backends
        lb.record_failure(old, now=1.0, reason="refused")
        assert lb.pick(1.0) is old  # panic: every backend in rotation is out, try it anyway
        assert lb.pick(1.0, tried=[old]) is None

    def test_without_active_checks_new_backends_join_at_once(self) -> None:
        storage = parse_storage_url(REPLICATED)
        lb = Balancer.local([(storage, "10.0.1.1")], HealthPolicy())
        added, removed = lb.replace([(storage, "10.0.1.2")], on_probation=False)
        assert added[0].available(0.0)
        assert removed[0].retired


class TestDiscoveryLoop:
    async def test_it_resolves_again_every_interval_and_hands_on_changes(self) -> None:
        records = {"storage": ["10.0.1.1"]}
        naps: list[float] = []
        changes: list[list[str]] = []
        resumed = asyncio.Event()

        async def sleep(seconds: float) -> None:
            naps.append(seconds)
            if len(naps) > 2:
                resumed.set()
                await asyncio.Event().wait()  # park the loop after two rounds

        def resolve(host: str, port: int) -> list[str]:
            return records[host]

        discovery = Discovery(
            [parse_storage_url(REPLICATED)],
            5.0,
            EventLog(LogSink(), fmt="json"),  # type: ignore[arg-type]
            resolve,
            sleep,
        )
        assert [address for _, address in discovery.resolve_now()] == ["10.0.1.1"]
        records["storage"] = ["10.0.1.1", "10.0.1.9"]
        discovery.start(lambda members: changes.append([address for _, address in members]))
        await asyncio.wait_for(resumed.wait(), 5)
        await discovery.stop()
        assert naps == [5.0, 5.0, 5.0]
        # Every round hands its members on; the gateway compares them with its table.
        assert changes == [["10.0.1.1", "10.0.1.9"]] * 2

    def test_the_system_resolver_reads_the_hosts_file(self) -> None:
        assert "127.0.0.1" in system_resolver("localhost", 80)
