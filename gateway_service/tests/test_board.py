"""The shared board across real forked processes: one rotation, one health state, counters that
add up, a table that changes under readers, and a lock that survives its holder being killed."""

import os
import signal
from collections.abc import Callable

import pytest

from gateway_service.backends import Balancer, Balancing, HealthPolicy
from gateway_service.board import Board
from gateway_service.settings import parse_storage_url

STORAGES = [parse_storage_url(f"http://storage{i}:8000") for i in (1, 2, 3)]


def shared_balancer(workers: int, balancing: Balancing = Balancing(), **policy: float) -> Balancer:
    board = Board(workers)
    balancer = Balancer(board, STORAGES, HealthPolicy(**policy), balancing=balancing)  # type: ignore[arg-type]
    balancer.replace([(storage, storage.host) for storage in STORAGES], on_probation=False)
    return balancer


def worker_view(shared: Balancer, index: int) -> Balancer:
    """What a worker process does after the fork: count in its own area, then build its own view
    of the board (a view made before `attach` would go on counting in the parent's area)."""
    shared.board.attach(index)
    return Balancer(shared.board, STORAGES, shared.policy, balancing=shared.balancing)


def in_child(work: Callable[[], None]) -> int:
    """Run `work` in a forked child; its pid. The child exits 0 when `work` returns."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            work()
            status = 0
        finally:
            os._exit(status)
    return pid


def wait_ok(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


class TestOneRotation:
    def test_workers_taking_turns_share_one_strict_rotation(self) -> None:
        balancer = shared_balancer(workers=2)
        picks: list[str] = []
        read_end, write_end = os.pipe()

        def worker(index: int, turns: int) -> Callable[[], None]:
            def work() -> None:
                view = worker_view(balancer, index)
                for _ in range(turns):
                    backend = view.pick(0.0)
                    assert backend is not None
                    os.write(write_end, backend.storage.host[-1].encode())
                    view.record_success(backend, 0.0)

            return work

        # Alternate workers, one pick at a time, as connections would land on either.
        for turn in range(30):
            wait_ok(in_child(worker(turn % 2, 1)))
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            picks = list(pipe.read().decode())
        assert picks == list("123" * 10)
        assert [backend.requests_served for backend in balancer.backends] == [10, 10, 10]

    def test_concurrent_workers_never_take_the_same_turn(self) -> None:
        balancer = shared_balancer(workers=4)

        def work(index: int) -> Callable[[], None]:
            def run() -> None:
                view = worker_view(balancer, index)
                for _ in range(3000):
                    backend = view.pick(0.0)
                    assert backend is not None
                    view.record_success(backend, 0.0)

            return run

        for pid in [in_child(work(index)) for index in range(4)]:
            wait_ok(pid)
        # Under the lock every turn moves the rotation by one: exactly 4,000 each.
        assert [backend.requests_served for backend in balancer.backends] == [4000] * 3


class TestOneHealthState:
    def test_a_failure_seen_by_one_worker_takes_the_backend_out_for_all(self) -> None:
        balancer = shared_balancer(workers=2, fail_timeout=10.0)

        def fail_storage2() -> None:
            view = worker_view(balancer, 1)
            view.record_failure(view.backends[1], 100.0, "HTTP 500")

        wait_ok(in_child(fail_storage2))
        balancer.board.attach(0)
        assert not balancer.backends[1].available(100.0)
        assert [balancer.pick(100.0).storage.host for _ in range(4)] == [  # type: ignore[union-attr]
            "storage1",
            "storage3",
            "storage1",
            "storage3",
        ]
        assert balancer.backends[1].available(110.0)

    def test_max_fails_counts_failures_from_every_worker(self) -> None:
        balancer = shared_balancer(workers=3, max_fails=3, fail_timeout=10.0)

        def fail_once(index: int) -> Callable[[], None]:
            def run() -> None:
                view = worker_view(balancer, index)
                view.record_failure(view.backends[0], 100.0, "reset")

            return run

        for index in (0, 1):
            wait_ok(in_child(fail_once(index)))
        assert balancer.backends[0].available(100.0)
        wait_ok(in_child(fail_once(2)))
        assert not balancer.backends[0].available(100.0)


class TestTable:
    def test_a_reader_follows_a_table_the_writer_changed(self) -> None:
        writer = shared_balancer(workers=2)
        reader = Balancer(writer.board, STORAGES, HealthPolicy())
        seen: list[tuple[list[str], list[str]]] = []
        reader.on_membership = lambda added, removed: seen.append(
            ([b.address for b in added], [b.address for b in removed])
        )
        assert [b.address for b in reader.backends] == ["storage1", "storage2", "storage3"]
        writer.replace(
            [(STORAGES[0], "storage1"), (STORAGES[2], "storage3"), (STORAGES[1], "10.0.0.9")],
            on_probation=True,
        )
        assert [b.address for b in reader.backends] == ["storage1", "storage3", "10.0.0.9"]
        assert seen[-1] == (["10.0.0.9"], ["storage2"])
        new = reader.backends[2]
        assert (new.on_probation, new.available(0.0)) == (True, False)

    def test_a_retired_backend_in_a_reused_slot_changes_nothing(self) -> None:
        balancer = shared_balancer(workers=1, fail_timeout=10.0)
        old = balancer.backends[1]
        balancer.replace([(STORAGES[0], "storage1"), (STORAGES[2], "storage3")], on_probation=False)
        balancer.replace(
            [(STORAGES[0], "storage1"), (STORAGES[2], "storage3"), (STORAGES[1], "10.0.0.9")],
            on_probation=False,
        )
        new = balancer.backends[2]
        assert new.slot == old.slot
        assert old.retired
        balancer.record_failure(old, 100.0, "a request from before")  # still in flight then
        balancer.record_success(old, 100.0)
        assert new.available(100.0)
        assert (new.requests_served, new.consecutive_failures) == (0, 0)


class TestLock:
    def test_a_worker_killed_while_holding_the_lock_does_not_block_the_others(self) -> None:
        board = Board(workers=2)
        ready_read, ready_write = os.pipe()

        def hold_forever() -> None:
            board.attach(1)
            board.lock.acquire()
            os.write(ready_write, b"x")
            signal.pause()

        pid = in_child(hold_forever)
        assert os.read(ready_read, 1) == b"x"
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        board.attach(0)
        with board.lock.held():  # would hang for ever if the kernel kept the dead holder's lock
            pass


@pytest.mark.parametrize("workers", [1, 4])
def test_status_counters_add_up_over_workers(workers: int) -> None:
    balancer = shared_balancer(workers=workers)

    def serve(index: int) -> Callable[[], None]:
        def run() -> None:
            backend = worker_view(balancer, index).backends[0]
            backend.observe("success", 0.003)
            backend.observe("read_timeout", 5.0)

        return run

    for index in range(workers):
        wait_ok(in_child(serve(index)))
    backend = balancer.backends[0]
    assert backend.outcomes == {"success": workers, "read_timeout": workers}
    assert sum(backend.latency_counts) == 2 * workers
    assert backend.latency_sum == pytest.approx(5.003 * workers)
