"""What the control process writes for the admin API, as workers see it: weights as a smooth
rotation, a drained backend out of it (panic mode too), attempts counted in flight, and backends
of entries the workers were not started with, learnt from the board in forked workers."""

import os
from collections import Counter

import pytest

from gateway_service.backends import Balancer, Balancing, HealthPolicy, smooth_rotation
from gateway_service.board import Board
from gateway_service.settings import parse_storage_url
from gateway_service.tests.test_board import (
    STORAGES,
    in_child,
    shared_balancer,
    wait_ok,
    worker_view,
)

MEMBERS = [(storage, storage.host) for storage in STORAGES]


def hosts(balancer: Balancer, count: int, now: float = 0.0) -> list[str]:
    picked = []
    for _ in range(count):
        backend = balancer.pick(now)
        assert backend is not None
        balancer.done(backend)
        picked.append(backend.storage.host)
    return picked


class TestSmoothRotation:
    def test_equal_weights_give_each_once_in_order(self) -> None:
        assert smooth_rotation([(4, 1), (7, 1), (2, 1)]) == [4, 7, 2]
        assert smooth_rotation([(4, 3), (7, 3)]) == [4, 7]  # divided by their gcd

    def test_a_heavy_backend_is_spread_out_not_bunched(self) -> None:
        assert smooth_rotation([(0, 5), (1, 1), (2, 1)]) == [0, 0, 1, 0, 2, 0, 0]

    def test_shares_follow_weights(self) -> None:
        turns = smooth_rotation([(0, 100), (1, 37), (2, 1)])
        assert Counter(turns) == {0: 100, 1: 37, 2: 1}

    def test_nothing_gives_nothing(self) -> None:
        assert smooth_rotation([]) == []


class TestWeightsAndDrain:
    def test_default_weights_keep_the_strict_rotation(self) -> None:
        balancer = shared_balancer(workers=1)
        assert hosts(balancer, 30) == ["storage1", "storage2", "storage3"] * 10

    def test_a_weight_gives_its_share_across_forked_workers(self) -> None:
        balancer = shared_balancer(workers=2)
        balancer.weights[STORAGES[0].url] = 3
        balancer.replace(MEMBERS, on_probation=False)

        def work(index: int) -> None:
            view = worker_view(balancer, index)
            for _ in range(50):
                backend = view.pick(0.0)
                assert backend is not None
                view.done(backend)
                view.record_success(backend, 0.0)

        for pid in [in_child(lambda i=i: work(i)) for i in (0, 1)]:  # type: ignore[misc]
            wait_ok(pid)
        assert [b.requests_served for b in balancer.backends] == [60, 20, 20]
        assert [b.weight for b in balancer.backends] == [3, 1, 1]

    def test_a_drained_backend_gets_no_turn_even_in_panic_mode(self) -> None:
        balancer = Balancer.local(STORAGES, HealthPolicy(fail_timeout=10.0))
        balancer.draining.add(STORAGES[1].url)
        balancer.replace(MEMBERS, on_probation=False)
        assert balancer.backends[1].draining
        assert hosts(balancer, 4) == ["storage1", "storage3"] * 2
        assert balancer.in_rotation(0.0) == 2
        for backend in (balancer.backends[0], balancer.backends[2]):
            balancer.record_failure(backend, 0.0, "reset")  # both banned: panic mode
        assert balancer.in_rotation(0.0) == 0
        assert set(hosts(balancer, 4)) == {"storage1", "storage3"}
        balancer.draining.clear()
        balancer.replace(MEMBERS, on_probation=False)
        assert not balancer.backends[1].draining
        assert "storage2" in hosts(balancer, 3, now=20.0)

    def test_draining_every_backend_leaves_nothing_to_pick(self) -> None:
        balancer = Balancer.local(STORAGES, HealthPolicy())
        balancer.draining.update(storage.url for storage in STORAGES)
        balancer.replace(MEMBERS, on_probation=False)
        assert balancer.pick(0.0) is None

    def test_the_rotation_goes_on_from_the_backend_that_was_next(self) -> None:
        balancer = Balancer.local(STORAGES, HealthPolicy())
        assert hosts(balancer, 1) == ["storage1"]
        balancer.weights[STORAGES[2].url] = 2
        balancer.replace(MEMBERS, on_probation=False)
        assert hosts(balancer, 1) == ["storage2"]


class TestInFlight:
    def test_a_pick_counts_an_attempt_until_it_ends_over_all_workers(self) -> None:
        # What the admin API turns on: counting with round robin, as least_request does.
        balancer = shared_balancer(workers=2, balancing=Balancing(counts_in_flight=True))
        read_end, write_end = os.pipe()

        def work() -> None:
            view = worker_view(balancer, 1)
            view.pick(0.0)  # storage1, left in flight as the worker exits
            backend = view.pick(0.0)
            assert backend is not None
            view.done(backend)
            os.write(write_end, b"x")

        wait_ok(in_child(work))
        os.read(read_end, 1)
        assert [b.in_flight for b in balancer.backends] == [1, 0, 0]
        # A replacement worker in the same area starts with nothing in flight: it ended with
        # the worker that died.
        balancer.board.attach(1)
        assert [b.in_flight for b in balancer.backends] == [0, 0, 0]


class TestEntriesAddedAtRunTime:
    def test_forked_workers_learn_a_new_entry_from_the_board(self) -> None:
        balancer = shared_balancer(workers=2)
        views = [worker_view(balancer, 0)]  # made before the change, as a running worker is
        balancer.board.attach(0)
        added = parse_storage_url("http://storage9:8009")
        balancer.replace([*MEMBERS, (added, added.host)], on_probation=False)
        read_end, write_end = os.pipe()

        def work() -> None:
            view = views[0]
            view.board.attach(1)
            seen = [(b.url, b.address, b.storage.port) for b in view.backends]
            os.write(write_end, repr(seen[-1]).encode())

        wait_ok(in_child(work))
        assert os.read(read_end, 200) == repr(("http://storage9:8009", "storage9", 8009)).encode()
        assert hosts(balancer, 4) == ["storage1", "storage2", "storage3", "storage9"]

    def test_a_url_too_long_for_the_board_is_refused(self) -> None:
        with pytest.raises(ValueError, match="over"):
            Board().set_url(0, "http://" + "a" * 300 + ":1")
