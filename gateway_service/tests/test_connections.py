"""The connection guard: the request and send deadlines, and the cap, with a fake clock."""

import json

import pytest

from gateway_service import connections
from gateway_service.connections import (
    MIN_CONNECTIONS,
    RESERVE_FDS,
    ConnectionGuard,
    SharedCap,
    connection_cap,
)
from gateway_service.logs import EventLog
from gateway_service.tests.conftest import LogSink
from gateway_service.tests.fakes import FakeClock


def events(text: str, name: str) -> list[dict[str, object]]:
    lines = (json.loads(line) for line in text.splitlines() if line.startswith("{"))
    return [line for line in lines if line["event"] == name]


class TestConnectionCap:
    def test_each_client_may_hold_an_upstream_connection_besides_idle_pools_and_a_reserve(
        self,
    ) -> None:
        assert connection_cap(65536, backends=3, idle_per_backend=32) == (65536 - 64 - 96) // 2
        assert connection_cap(1024, backends=1, idle_per_backend=256) == (1024 - 64 - 256) // 2

    @pytest.mark.parametrize("nofile", [256, 1024, 4096, 65536, 1 << 20])
    @pytest.mark.parametrize(("backends", "idle"), [(1, 32), (3, 32), (3, 256), (10, 32)])
    def test_every_descriptor_a_full_gateway_may_hold_fits_the_limit(
        self, nofile: int, backends: int, idle: int
    ) -> None:
        cap = connection_cap(nofile, backends, idle)
        if cap > MIN_CONNECTIONS:
            assert 2 * cap + backends * idle + RESERVE_FDS <= nofile

    def test_a_tiny_limit_still_leaves_a_few_connections(self) -> None:
        assert connection_cap(100, backends=3, idle_per_backend=32) == MIN_CONNECTIONS


class FakeConnection:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False
        self.aborted = False

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def __repr__(self) -> str:
        return self.name


def guard_for(
    max_connections: int = 100, client_timeout: float = 10.0
) -> tuple[ConnectionGuard, FakeClock, LogSink]:
    clock, logs = FakeClock(), LogSink()
    guard = ConnectionGuard(
        client_timeout=client_timeout,
        max_connections=max_connections,
        log=EventLog(logs, fmt="json"),  # type: ignore[arg-type]
        clock=clock,
    )
    return guard, clock, logs


def head_complete(guard: ConnectionGuard, connection: FakeConnection) -> None:
    """What the protocol does when a request is complete."""
    guard.waiting.pop(connection, None)


def waiting_for_head(guard: ConnectionGuard, connection: FakeConnection) -> None:
    """What the protocol does when a response finished and the connection stays open."""
    guard.waiting[connection] = guard.clock()


def admitted(guard: ConnectionGuard, *names: str) -> list[FakeConnection]:
    connections = [FakeConnection(name) for name in names]
    for connection in connections:
        assert guard.admit(connection)
    return connections


class TestDeadline:
    def test_a_head_late_by_the_deadline_is_closed_at_the_next_sweep(self) -> None:
        guard, clock, _ = guard_for(client_timeout=10)
        [early] = admitted(guard, "early")
        clock.advance(5)
        [later] = admitted(guard, "later")
        clock.advance(4.9)
        assert guard.sweep() == 0
        clock.advance(0.1)
        assert guard.sweep() == 1
        assert (early.closed, later.closed) == (True, False)
        assert early not in guard.open

    def test_a_request_being_served_is_never_late_and_its_successor_starts_a_new_deadline(
        self,
    ) -> None:
        guard, clock, _ = guard_for(client_timeout=10)
        [busy] = admitted(guard, "busy")
        head_complete(guard, busy)
        clock.advance(1000)
        assert guard.sweep() == 0
        waiting_for_head(guard, busy)
        clock.advance(9.9)
        assert guard.sweep() == 0
        clock.advance(0.1)
        assert guard.sweep() == 1
        assert busy.closed

    def test_a_restamped_connection_moves_behind_the_ones_waiting_longer(self) -> None:
        guard, clock, _ = guard_for(client_timeout=10)
        first, second = admitted(guard, "first", "second")
        head_complete(guard, first)
        clock.advance(3)
        waiting_for_head(guard, first)
        clock.advance(7)
        assert guard.sweep() == 1
        assert (first.closed, second.closed) == (False, True)

    def test_a_connection_closed_by_the_client_is_forgotten(self) -> None:
        guard, clock, _ = guard_for(client_timeout=10)
        [gone] = admitted(guard, "gone")
        guard.forget(gone)
        clock.advance(60)
        assert guard.sweep() == 0
        assert not gone.closed
        assert guard.open == set()


class TestCap:
    def test_at_the_cap_the_connection_waiting_longest_for_a_head_makes_room(self) -> None:
        guard, clock, _ = guard_for(max_connections=3)
        busy, idle_1, idle_2 = admitted(guard, "busy", "idle_1", "idle_2")
        head_complete(guard, busy)
        clock.advance(1)
        [new] = admitted(guard, "new")
        assert [c.closed for c in (busy, idle_1, idle_2, new)] == [False, True, False, False]
        assert guard.open == {busy, idle_2, new}

    def test_at_the_cap_with_every_connection_busy_the_new_one_is_refused(self) -> None:
        guard, _, _ = guard_for(max_connections=2)
        connections = admitted(guard, "a", "b")
        for connection in connections:
            head_complete(guard, connection)
        refused = FakeConnection("refused")
        assert not guard.admit(refused)
        assert guard.open == set(connections)
        assert not any(c.closed for c in connections)
        # The refused connection's loss is reported later; it must not disturb the count.
        guard.forget(refused)
        assert guard.open == set(connections)

    def test_the_cap_is_logged_once_until_the_count_falls_to_90_percent(self) -> None:
        guard, _, logs = guard_for(max_connections=20)

        def client_closes(count: int) -> None:
            for _ in range(count):
                guard.forget(next(iter(guard.open)))

        admitted(guard, *(f"c{i}" for i in range(20)))
        assert events(logs.text, "connection_limit") == []
        admitted(guard, "over_1", "over_2", "over_3")
        [line] = events(logs.text, "connection_limit")
        assert (line["level"], line["max_connections"]) == ("warning", 20)
        client_closes(1)  # 19 open: above 90 %
        admitted(guard, "refill", "over_4")
        assert len(events(logs.text, "connection_limit")) == 1
        client_closes(2)  # 18 open: 90 %
        admitted(guard, "refill_1", "refill_2")
        assert len(events(logs.text, "connection_limit")) == 1
        admitted(guard, "over_5")
        assert len(events(logs.text, "connection_limit")) == 2


class TestSendDeadline:
    def test_a_client_that_reads_nothing_for_the_timeout_is_dropped_unflushed(self) -> None:
        guard, clock, _ = guard_for(client_timeout=10)
        stuck, reading = admitted(guard, "stuck", "reading")
        for connection in (stuck, reading):
            head_complete(guard, connection)
            guard.stalled[connection] = clock()  # its transport stopped taking writes
        clock.advance(6)
        guard.stalled.pop(reading)  # it read enough for writes to resume
        clock.advance(4)
        assert guard.sweep() == 1
        # Aborted, not closed: closing would wait to flush what it will never read.
        assert (stuck.aborted, stuck.closed, reading.aborted) == (True, False, False)
        assert guard.open == {reading}

    def test_both_deadlines_are_swept_together(self) -> None:
        guard, clock, _ = guard_for(client_timeout=10)
        late, stuck = admitted(guard, "late", "stuck")
        head_complete(guard, stuck)
        guard.stalled[stuck] = clock()
        clock.advance(10)
        assert guard.sweep() == 2
        assert (late.closed, stuck.aborted) == (True, True)


class TestEmpty:
    def test_the_last_connection_forgotten_says_so(self) -> None:
        guard, _, _ = guard_for()
        calls: list[int] = []
        guard.on_empty = lambda: calls.append(len(guard.open))
        first, second = admitted(guard, "first", "second")
        guard.forget(first)
        assert calls == []
        guard.forget(second)
        assert calls == [0]


class TestMemory:
    def test_a_sweep_after_a_thousand_connections_closed_returns_free_memory(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        trims: list[int] = []
        monkeypatch.setattr(connections, "MALLOC_TRIM", trims.append)
        guard, _, _ = guard_for(max_connections=5000)
        crowd = admitted(guard, *(f"c{i}" for i in range(1500)))
        for connection in crowd[:999]:
            guard.forget(connection)
        guard.sweep()
        assert trims == []  # 999 closed: not yet worth it
        guard.forget(crowd[999])
        guard.sweep()
        assert trims == [0]
        guard.sweep()
        assert trims == [0]  # once per crowd, not once per sweep


class TestSharedCap:
    def test_max_connections_holds_for_all_workers_together(self) -> None:
        counts = [0, 0]

        def worker(index: int) -> ConnectionGuard:
            def publish(count: int) -> None:
                counts[index] = count

            shared = SharedCap(limit=3, total=lambda: sum(counts), publish=publish)
            guard, _, _ = guard_for(max_connections=100)
            guard.shared = shared
            return guard

        first, second = worker(0), worker(1)
        busy = admitted(first, "a", "b")
        for connection in busy:
            head_complete(first, connection)
        [waiting] = admitted(second, "c")
        assert counts == [2, 1]
        # At the cap: the second worker makes room by closing its own waiting connection...
        [new] = admitted(second, "d")
        assert (waiting.closed, counts) == (True, [2, 1])
        head_complete(second, new)
        # ...and the first, with none waiting, must refuse.
        assert not first.admit(FakeConnection("e"))
        first.forget(busy[0])
        assert first.admit(FakeConnection("f"))
