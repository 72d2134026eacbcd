"""What the gateway knows about each storage service, and the round-robin choice among them.

A backend is one address of one `STORAGE_SERVICES` entry (gateway_service/discovery.py finds
them). It is in rotation when the active checker has not taken it out (`HEALTH_FALL` bad probes
in a row; `HEALTH_RISE` good ones bring it back) and it is not serving a passive ban (`MAX_FAILS`
failed requests within `FAIL_TIMEOUT` take it out for `FAIL_TIMEOUT`, as in nginx), unless
`MAX_EJECTION_PERCENT` of the backends are out that way already.

The choice among them is one shared round robin (the seed's contract), or with
`BALANCING=least_request` the less busy of two drawn at random. With `SLOW_START`, a backend back
in rotation gets a share that grows from a tenth to its full share over that many seconds.
README.md ("How it balances and fails over") describes each.

Every process of the gateway sees the same backends, health state and rotation: they live on the
shared board (gateway_service/board.py), and `Backend` is a view of one slot of it. Everything here
is synchronous and takes the time as an argument, so tests drive it without sleeping.
"""

import math
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce
from random import random
from typing import Protocol

from gateway_service.board import (
    C_IN_FLIGHT,
    C_LATENCY,
    C_LATENCY_SUM,
    C_OUTCOMES,
    C_SERVED,
    G_EJECTIONS_REFUSED,
    H_NEXT,
    H_SEQUENCE,
    LATENCY_BUCKETS,
    MAX_BACKENDS,
    OUTCOME_INDEX,
    OUTCOMES,
    RUNTIME_STORAGE,
    S_ACTIVE_UP,
    S_BANNED_UNTIL,
    S_CONSECUTIVE_FAILURES,
    S_DRAINING,
    S_ID,
    S_LAST_CHECK_LATENCY,
    S_LAST_CHECKED,
    S_PROBATION,
    S_PROBE_FAILS,
    S_PROBE_PASSES,
    S_RETURNED_AT,
    S_SLOW_CREDIT,
    S_STORAGE,
    S_WEIGHT,
    S_WINDOW_FAILS,
    S_WINDOW_START,
    Board,
)
from gateway_service.settings import StorageURL, parse_storage_url


class _Int:
    """An int field of the backend's slot on the board, read and written in place."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __get__(self, backend: "Backend", owner: type | None = None) -> int:
        value: int = backend.board.q[backend.base + self.offset]
        return value

    def __set__(self, backend: "Backend", value: int) -> None:
        backend.board.q[backend.base + self.offset] = value


class _Float:
    """A float field of the backend's slot on the board, read and written in place."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __get__(self, backend: "Backend", owner: type | None = None) -> float:
        value: float = backend.board.d[backend.base + self.offset]
        return value

    def __set__(self, backend: "Backend", value: float) -> None:
        backend.board.d[backend.base + self.offset] = value


class Backend:
    """One address of a storage service: where it is, and a view of its state on the board."""

    __slots__ = (
        "address", "base", "board", "counters", "host_header", "id", "in_flight_at", "slot",
        "storage",
    )  # fmt: skip

    probe_passes = _Int(S_PROBE_PASSES)
    probe_fails = _Int(S_PROBE_FAILS)
    window_start = _Float(S_WINDOW_START)
    window_fails = _Int(S_WINDOW_FAILS)
    consecutive_failures = _Int(S_CONSECUTIVE_FAILURES)
    banned_until = _Float(S_BANNED_UNTIL)  # monotonic time; a passive ban lasts until then
    returned_at = _Float(S_RETURNED_AT)  # monotonic time it is back in rotation from

    def __init__(self, board: Board, slot: int, storage: StorageURL, address: str) -> None:
        self.board = board
        self.slot = slot
        self.base = board.slot_base(slot)
        self.id = board.q[self.base + S_ID]
        self.storage = storage  # the STORAGE_SERVICES entry it came from
        # What connections go to: an IP address, or the entry's host when not resolved.
        self.address = address
        # The Host header sent to it: the name as the user wrote it, whatever the address.
        self.host_header = storage.host_header.encode()
        self.counters = board.counter_base(board.worker, slot)  # this process's counters
        # Its in-flight count in the first worker's area; the others' follow every worker_words.
        self.in_flight_at = board.counter_base(0, slot) + C_IN_FLIGHT

    def __repr__(self) -> str:
        return f"Backend({self.label!r}, slot={self.slot})"

    @property
    def url(self) -> str:
        return self.storage.url

    @property
    def label(self) -> str:
        """How logs and error messages name it: the entry's URL, and the address when resolved."""
        if self.address == self.storage.host:
            return self.storage.url
        return f"{self.storage.url} ({self.address})"

    @property
    def retired(self) -> bool:
        """No longer in the table (its address went away): its changes go unsaid and uncounted."""
        return self.board.q[self.base + S_ID] != self.id

    # Health state, shared by every process.

    @property
    def active_up(self) -> bool:
        return bool(self.board.q[self.base + S_ACTIVE_UP])

    @active_up.setter
    def active_up(self, up: bool) -> None:
        self.board.q[self.base + S_ACTIVE_UP] = int(up)

    @property
    def on_probation(self) -> bool:
        """Found after start-up: out of rotation until its first good probe (Envoy's STRICT_DNS)."""
        return bool(self.board.q[self.base + S_PROBATION])

    @on_probation.setter
    def on_probation(self, value: bool) -> None:
        self.board.q[self.base + S_PROBATION] = int(value)

    @property
    def last_checked(self) -> float | None:
        """Wall-clock time of the last probe."""
        value = self.board.d[self.base + S_LAST_CHECKED]
        return None if math.isnan(value) else value

    @property
    def last_check_latency(self) -> float | None:
        value = self.board.d[self.base + S_LAST_CHECK_LATENCY]
        return None if math.isnan(value) else value

    @property
    def weight(self) -> int:
        """Its turns per round of the rotation (a slot written before weights existed: 1)."""
        return self.board.q[self.base + S_WEIGHT] or 1

    @property
    def draining(self) -> bool:
        """Out of the rotation by the admin API's drain: no new requests, in-flight ones finish."""
        return bool(self.board.q[self.base + S_DRAINING])

    def available(self, now: float) -> bool:
        base = self.base
        return bool(self.board.q[base + S_ACTIVE_UP]) and now >= self.board.d[base + S_BANNED_UNTIL]

    def worth_a_panic_try(self) -> bool:
        """Whether to try it when nothing is in rotation: not when probes say it is down and
        none has passed since, nor when it is new and has never answered one."""
        return (self.active_up or self.probe_passes > 0) and not self.on_probation

    # Counters: this process writes its own area; readers add every worker's up.

    def observe(self, outcome: str, seconds: float) -> None:
        """Count one attempt's outcome and latency."""
        q = self.board.q
        counters = self.counters
        q[counters + C_OUTCOMES + OUTCOME_INDEX[outcome]] += 1
        q[counters + C_LATENCY + bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.board.d[counters + C_LATENCY_SUM] += seconds

    def _sum(self, offset: int, kind: str = "q") -> int | float:
        board = self.board
        view = board.q if kind == "q" else board.d
        return sum(
            view[board.counter_base(worker, self.slot) + offset] for worker in range(board.workers)
        )

    @property
    def in_flight(self) -> int:
        """Attempts on it now, all workers together (counted with BALANCING=least_request)."""
        board = self.board
        start = self.in_flight_at
        return sum(board.q[start : start + board.workers * board.worker_words : board.worker_words])

    @property
    def requests_served(self) -> int:
        return int(self._sum(C_SERVED))

    @property
    def outcomes(self) -> dict[str, int]:
        counts = [int(self._sum(C_OUTCOMES + index)) for index in range(len(OUTCOMES))]
        return {outcome: count for outcome, count in zip(OUTCOMES, counts, strict=True) if count}

    @property
    def latency_counts(self) -> list[int]:
        return [int(self._sum(C_LATENCY + index)) for index in range(len(LATENCY_BUCKETS) + 1)]

    @property
    def latency_sum(self) -> float:
        return float(self._sum(C_LATENCY_SUM, "d"))


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    max_fails: int = 1
    fail_timeout: float = 10.0
    rise: int = 2
    fall: int = 2
    # Passive checks take out at most this share of the backends at once.
    max_ejection_percent: int = 100


@dataclass(frozen=True, slots=True)
class Balancing:
    """How the next backend is chosen (BALANCING and SLOW_START)."""

    least_request: bool = False
    slow_start: float = 0.0  # seconds; 0: a returning backend gets its full share at once
    # Count attempts in flight whatever the balancing: a drain (the admin API) waits on them.
    counts_in_flight: bool = False


# The share a backend gets as its slow start begins, of its full share: Envoy's default
# min_weight_percent, so that it gets some traffic to warm up on from the first second.
SLOW_START_FLOOR = 0.1


StateListener = Callable[[Backend, bool, str], None]
# Called in each process when the backends it sees change: (added, removed).
MembershipListener = Callable[[list[Backend], list[Backend]], None]
# One backend to be: the entry it comes from and the address it resolved to.
Member = tuple[StorageURL, str]


class Picker(Protocol):
    """Balancer.pick: the backend for a request's next attempt, or None."""

    def __call__(self, now: float, tried: Sequence[Backend] = ()) -> Backend | None: ...


class Balancer:
    """The choice among the backends in rotation, and the health bookkeeping behind it."""

    def __init__(
        self,
        board: Board,
        storages: Sequence[StorageURL],
        policy: HealthPolicy,
        on_change: StateListener | None = None,
        balancing: Balancing = Balancing(),
    ) -> None:
        """`storages`: the STORAGE_SERVICES entries (the board's slots name them by index)."""
        self.board = board
        self.storages = list(storages)
        self.policy = policy
        self.balancing = balancing
        self._on_change = on_change
        self.on_membership: MembershipListener | None = None
        self._sequence = -1
        self._backends: list[Backend] = []
        self._rotation: list[Backend] = []
        self._q = board.q
        # The writer's wishes per entry URL (the admin API's), applied by `replace`.
        self.weights: dict[str, int] = {}
        self.draining: set[str] = set()
        # Entries the workers were not started with, by the URL the board gives for them.
        self._runtime: dict[str, StorageURL] = {}
        self._d = board.d
        self.slow_start = balancing.slow_start
        # Chosen once here, so that the defaults pay nothing per request for the options.
        self.pick: Picker
        if balancing.least_request:
            self.pick = self._pick_least_request
        elif balancing.slow_start:
            self.pick = self._pick_round_robin_ramped
        else:
            self.pick = self._pick_round_robin
        self.counts_in_flight = balancing.least_request or balancing.counts_in_flight
        if self.counts_in_flight and not balancing.least_request:
            self.pick = self._counted(self.pick)
        # With 100 % the cap can never be reached (the backend failing is not out yet).
        self._ejection_cap = policy.max_ejection_percent < 100
        self._refused_ejections_at = board.global_base(board.worker) + G_EJECTIONS_REFUSED

    @classmethod
    def local(
        cls,
        members: Sequence[Member | StorageURL],
        policy: HealthPolicy,
        on_change: StateListener | None = None,
        balancing: Balancing = Balancing(),
    ) -> "Balancer":
        """A balancer with a board of its own (one process), starting with `members` in rotation:
        each an (entry, address) pair, or an entry alone (its host is then the address)."""
        pairs = [m if isinstance(m, tuple) else (m, m.host) for m in members]
        storages = list(dict.fromkeys(storage for storage, _ in pairs))
        balancer = cls(Board(), storages, policy, on_change, balancing)
        balancer.replace(pairs, on_probation=False)
        return balancer

    # The table: one writer (the control process), every process a reader.

    @property
    def backends(self) -> list[Backend]:
        """The backends in the table's order (each once), as the board has them now."""
        if self._q[H_SEQUENCE] != self._sequence:
            self._reload()
        return self._backends

    @property
    def rotation(self) -> list[Backend]:
        """The turns of the rotation: each backend once per unit of weight, draining ones never."""
        if self._q[H_SEQUENCE] != self._sequence:
            self._reload()
        return self._rotation

    def _storage(self, slot: int) -> StorageURL:
        index = self._q[self.board.slot_base(slot) + S_STORAGE]
        if index != RUNTIME_STORAGE:
            return self.storages[index]
        url = self.board.url(slot)
        storage = self._runtime.get(url)
        if storage is None:
            storage = self._runtime[url] = parse_storage_url(url)
        return storage

    def _reload(self) -> None:
        board = self.board
        sequence, order, turns = board.read_table()
        previous = {(backend.slot, backend.id): backend for backend in self._backends}
        backends = []
        for slot in order:
            base = board.slot_base(slot)
            backend = previous.pop((slot, board.q[base + S_ID]), None)
            if backend is None:
                backend = Backend(board, slot, self._storage(slot), board.address(slot))
            backends.append(backend)
        added = [backend for backend in backends if backend not in self._backends]
        by_slot = {backend.slot: backend for backend in backends}
        self._backends = backends
        self._rotation = [by_slot[slot] for slot in turns if slot in by_slot]
        self._sequence = sequence
        if self.on_membership is not None and (added or previous):
            self.on_membership(added, list(previous.values()))

    def replace(
        self, members: Sequence[Member], *, on_probation: bool, now: float | None = None
    ) -> tuple[list[Backend], list[Backend]]:
        """Make the backends exactly `members`, in that order; return (added, removed).

        Only the process that runs discovery calls this. Backends still listed keep their state
        and counters. New ones start out of rotation until their first good probe when
        `on_probation` (no active checks: in at once, their slow start from `now`; without
        `now`, the first table, at full share). Removed ones get no new requests; requests
        already on them finish. The rotation goes on from the backend that was next, so a change
        does not restart it."""
        board = self.board
        current = {(backend.url, backend.address): backend for backend in self.backends}
        index = {storage.url: position for position, storage in enumerate(self.storages)}
        slots: list[int] = []
        kept: set[int] = set()
        fresh: list[tuple[int, StorageURL, str]] = []
        for storage, address in members:
            backend = current.pop((storage.url, address), None)
            if backend is not None:
                slots.append(backend.slot)
                kept.add(backend.slot)
            else:
                slots.append(-1)
                fresh.append((len(slots) - 1, storage, address))
        free = board.free_slots(kept)
        for position, storage, address in fresh[: MAX_BACKENDS - len(kept)]:
            slot = next(free)
            board.clear_slot(slot)
            base = board.slot_base(slot)
            board.set_address(slot, address)
            if storage.url in index:
                board.q[base + S_STORAGE] = index[storage.url]
            else:
                board.q[base + S_STORAGE] = RUNTIME_STORAGE
                board.set_url(slot, storage.url)
                self._runtime[storage.url] = storage
            board.q[base + S_ACTIVE_UP] = int(not on_probation)
            board.q[base + S_PROBATION] = int(on_probation)
            board.d[base + S_LAST_CHECKED] = math.nan
            board.d[base + S_LAST_CHECK_LATENCY] = math.nan
            board.d[base + S_RETURNED_AT] = -math.inf if now is None or on_probation else now
            board.q[base + S_ID] = board.next_id()
            slots[position] = slot
        rotation = self._weigh(
            [
                (storage, slot)
                for (storage, _), slot in zip(members, slots, strict=True)
                if slot >= 0
            ]
        )
        slots = [slot for slot in slots if slot >= 0]
        with board.lock.held():
            upcoming = self._upcoming()
            board.write_order(slots, rotation)
            board.q[H_NEXT] = rotation.index(upcoming) if upcoming in rotation else 0
        for backend in current.values():
            board.q[backend.base + S_ID] = 0  # the slot is free; the view is now retired
        before = list(self._backends)
        self._reload()
        added = [backend for backend in self._backends if backend not in before]
        return added, list(current.values())

    def _weigh(self, members: Sequence[tuple[StorageURL, int]]) -> list[int]:
        """Write each slot's weight and drain state as the writer wishes; the rotation."""
        q = self._q
        turns: list[tuple[int, int]] = []
        for storage, slot in members:
            base = self.board.slot_base(slot)
            weight = self.weights.get(storage.url, 1)
            draining = storage.url in self.draining
            q[base + S_WEIGHT] = weight
            if q[base + S_DRAINING] and not draining:
                # Back from a drain: a returning backend, so its slow start begins now.
                self._d[base + S_RETURNED_AT] = time.monotonic()
                self._d[base + S_SLOW_CREDIT] = 0.0
            q[base + S_DRAINING] = int(draining)
            if not draining:
                turns.append((slot, weight))
        return smooth_rotation(turns)

    def _counted(self, pick: Picker) -> Picker:
        """`pick`, counting the attempt it chose in flight (until `done`)."""
        q = self._q

        def counted(now: float, tried: Sequence[Backend] = ()) -> Backend | None:
            backend = pick(now, tried)
            if backend is not None:
                q[backend.counters + C_IN_FLIGHT] += 1
            return backend

        return counted

    def _upcoming(self) -> int | None:
        backends = self._rotation
        if not backends:
            return None
        return backends[self._q[H_NEXT] % len(backends)].slot

    def _pick_round_robin(self, now: float, tried: Sequence[Backend] = ()) -> Backend | None:
        """`pick` by default: the next backend in rotation that this request has not tried yet,
        or None.

        Every attempt, first or retry, takes the next turn of the one shared rotation (as nginx
        does), so when a service dies under load its in-flight requests are retried across all
        the survivors rather than piling onto the one listed after it. All workers share the
        rotation: its position moves under the board's lock.

        When no backend at all is in rotation, each is tried anyway (Envoy's panic mode; nginx
        resets its failure counts then): health state is a guess, and a guess that every
        service is down must not keep a recovered one idle for `FAIL_TIMEOUT`. Except those
        the active checker holds down with no good probe since: that verdict is fresh (one
        `HEALTH_INTERVAL` old at most), and a service that comes back passes a probe within an
        interval; trying them would make every request of a full outage wait out a connect
        timeout per service instead of answering 503 at once.

        The rotation is read under the lock: once the control process has written one without
        a backend (a drain), no pick still walks the old one."""
        q = self._q
        lock = self.board.lock
        lock.acquire()
        try:
            backends = self.rotation
            count = len(backends)
            if not count:
                return None
            start = q[H_NEXT] % count
            for step in range(count):
                index = (start + step) % count
                backend = backends[index]
                if backend.available(now) and backend not in tried:
                    q[H_NEXT] = (index + 1) % count
                    return backend
            return self._panic_pick(backends, start, now, tried)
        finally:
            lock.release()

    def _panic_pick(
        self, backends: list[Backend], start: int, now: float, tried: Sequence[Backend]
    ) -> Backend | None:
        """When nothing untried is in rotation: the next one worth a panic try, or None (under
        the lock)."""
        if any(backend.available(now) for backend in backends):
            return None  # the ones in rotation were tried; the others stay out
        count = len(backends)
        for step in range(count):
            index = (start + step) % count
            backend = backends[index]
            if backend.worth_a_panic_try() and backend not in tried:
                self._q[H_NEXT] = (index + 1) % count
                return backend
        return None

    def _pick_round_robin_ramped(self, now: float, tried: Sequence[Backend] = ()) -> Backend | None:
        """`pick` with SLOW_START: the round robin, where a backend in its slow start takes its
        turn only once the fractions of turns it has earned (its share, a tenth at first) add up
        to a whole one, like a weighted round robin; it is passed over until then. Only when
        nothing else untried is in rotation does it get the turn at once."""
        q = self._q
        d = self._d
        window = self.slow_start
        lock = self.board.lock
        lock.acquire()
        try:
            backends = self.rotation
            count = len(backends)
            if not count:
                return None
            start = q[H_NEXT] % count
            passed_over = -1
            for step in range(count):
                index = (start + step) % count
                backend = backends[index]
                if backend.available(now) and backend not in tried:
                    base = backend.base
                    elapsed = now - d[base + S_RETURNED_AT]
                    if elapsed < window:
                        credit = d[base + S_SLOW_CREDIT] + max(SLOW_START_FLOOR, elapsed / window)
                        if credit < 1.0:
                            d[base + S_SLOW_CREDIT] = credit
                            if passed_over < 0:
                                passed_over = index
                            continue
                        d[base + S_SLOW_CREDIT] = credit - 1.0
                    q[H_NEXT] = (index + 1) % count
                    return backend
            if passed_over >= 0:
                q[H_NEXT] = (passed_over + 1) % count
                return backends[passed_over]
            return self._panic_pick(backends, start, now, tried)
        finally:
            lock.release()

    def _pick_least_request(self, now: float, tried: Sequence[Backend] = ()) -> Backend | None:
        """`pick` with BALANCING=least_request: of two backends drawn at random among those in
        rotation and untried, the one with fewer attempts in flight, all workers together
        (Envoy's default, HAProxy's `random(2)`). The attempt counts as in flight until
        `done(backend)`.
        Two random draws rather than the least busy of all: every worker choosing at once from
        the same slightly stale counts would all pile onto the one that looks idlest. Drawn
        from the rotation: a weight makes a backend as much likelier, a drained one is out."""
        backends = self.rotation
        count = len(backends)
        if count > 1 and not tried:
            # The usual case, a first attempt with the two drawn in rotation, without building
            # the list of candidates.
            first, second = _two_of(count)
            one, other = backends[first], backends[second]
            if one.available(now) and other.available(now):
                chosen = self._less_busy(one, other, now)
                self._q[chosen.counters + C_IN_FLIGHT] += 1
                return chosen
        candidates = [b for b in backends if b.available(now) and b not in tried]
        if not candidates:
            if any(backend.available(now) for backend in backends):
                return None
            candidates = [b for b in backends if b.worth_a_panic_try() and b not in tried]
            if not candidates:
                return None
        count = len(candidates)
        if count == 1:
            chosen = candidates[0]
        else:
            first, second = _two_of(count)
            one, other = candidates[first], candidates[second]
            chosen = self._less_busy(one, other, now)
        self._q[chosen.counters + C_IN_FLIGHT] += 1
        return chosen

    def _less_busy(self, one: Backend, other: Backend, now: float) -> Backend:
        """The one of two with fewer attempts in flight (`one` on a tie: both were drawn at
        random). With SLOW_START a backend in its slow start enters the contest only with its
        share's probability, so it gets about its share of a fair share however idle the others
        are; dividing its count by its share instead would give it nothing at all until the
        others were ten attempts deep."""
        if self.slow_start:
            if random() >= self.slow_start_share(one, now):  # nosec B311
                return other
            if random() >= self.slow_start_share(other, now):  # nosec B311
                return one
        return one if one.in_flight <= other.in_flight else other

    def done(self, backend: Backend) -> None:
        """An attempt `pick` counted in flight (BALANCING=least_request) is over."""
        if self._q[backend.base + S_ID] == backend.id:  # a reused slot's counts were zeroed
            self._q[backend.counters + C_IN_FLIGHT] -= 1

    def slow_start_share(self, backend: Backend, now: float) -> float:
        """The fraction of its full share a backend gets now: below 1 during its slow start."""
        window = self.slow_start
        if not window:
            return 1.0
        elapsed = now - self._d[backend.base + S_RETURNED_AT]
        if elapsed >= window:
            return 1.0
        return max(SLOW_START_FLOOR, elapsed / window)

    def _returned(self, backend: Backend, at: float) -> None:
        """`backend` is (or will be, at `at`) back in rotation: its slow start begins then."""
        backend.returned_at = at
        self._d[backend.base + S_SLOW_CREDIT] = 0.0

    def in_rotation(self, now: float) -> int:
        return sum(backend.available(now) and not backend.draining for backend in self.backends)

    # Passive health: outcomes of real requests, from whichever worker served them.

    def record_success(self, backend: Backend, now: float) -> None:
        q = self._q
        base = backend.base
        if q[base + S_ID] != backend.id:
            return  # retired while the request was in flight
        q[backend.counters + C_SERVED] += 1
        # Shared words are written only when they change: a write on every request would make
        # every worker's core fetch the line again.
        if q[base + S_CONSECUTIVE_FAILURES]:
            q[base + S_CONSECUTIVE_FAILURES] = 0
        # The failures within FAIL_TIMEOUT stand (nginx's max_fails): a success in between
        # does not forgive them, or a server failing every third request would never go out.
        if self.board.d[base + S_BANNED_UNTIL] > now:
            # Only a panic-mode attempt reaches a banned backend: it has proved itself.
            backend.banned_until = 0.0
            self._returned(backend, now)
            if backend.available(now):
                self._notify(backend, True, "passive: a request succeeded")

    def record_failure(self, backend: Backend, now: float, reason: str) -> None:
        if backend.retired:
            return
        policy = self.policy
        with self.board.lock.held():
            backend.consecutive_failures += 1
            if now - backend.window_start > policy.fail_timeout:
                backend.window_start = now
                backend.window_fails = 0
            backend.window_fails += 1
            banned = backend.window_fails >= policy.max_fails
            was_available = backend.available(now)
            if banned and was_available and self._ejection_cap and not self._may_eject(now):
                banned = False
                self._q[self._refused_ejections_at] += 1
            if banned:
                backend.banned_until = now + policy.fail_timeout
                self._returned(backend, backend.banned_until)
            if banned or backend.window_fails >= policy.max_fails:
                backend.window_fails = 0
        if banned and was_available:
            self._notify(backend, False, f"passive: {reason}")

    def _may_eject(self, now: float) -> bool:
        """Whether one more backend may go out by a passive ban (under the lock): only while
        the ones out that way would stay within MAX_EJECTION_PERCENT of them all. Beyond it a
        failing backend stays in rotation, so that one bad deploy failing everywhere does not
        empty the pool: its requests fail over to the next backend as retries."""
        backends = self.backends
        out = sum(1 for backend in backends if backend.banned_until > now)
        return (out + 1) * 100 <= self.policy.max_ejection_percent * len(backends)

    # Active health: results of /health probes, from the control process alone.

    def record_probe(
        self, backend: Backend, ok: bool, latency: float, now: float, wall_time: float
    ) -> None:
        if backend.retired:
            return
        board = self.board
        board.d[backend.base + S_LAST_CHECKED] = wall_time
        board.d[backend.base + S_LAST_CHECK_LATENCY] = latency
        policy = self.policy
        if ok:
            backend.probe_fails = 0
            backend.probe_passes += 1
            backend.consecutive_failures = 0
            if backend.on_probation:
                backend.on_probation = False
                backend.active_up = True
                self._returned(backend, now)
                self._notify(backend, True, "discovered: first good probe")
            elif not backend.active_up and backend.probe_passes >= policy.rise:
                backend.active_up = True
                # The checker saw it die and come back: that outranks an older passive ban.
                backend.banned_until = 0.0
                self._returned(backend, now)
                self._notify(backend, True, f"active: {policy.rise} good probes")
        else:
            backend.probe_passes = 0
            backend.probe_fails += 1
            backend.consecutive_failures += 1
            if backend.active_up and backend.probe_fails >= policy.fall:
                was_available = backend.available(now)
                backend.active_up = False
                if was_available:
                    self._notify(backend, False, f"active: {policy.fall} bad probes")

    def settling(self, backend: Backend) -> bool:
        """True while probes disagree with the current state (a rise or fall is under way)."""
        if backend.active_up:
            return backend.probe_fails > 0
        return backend.probe_passes > 0

    def _notify(self, backend: Backend, up: bool, reason: str) -> None:
        if self._on_change is not None and not backend.retired:
            self._on_change(backend, up, reason)


def _two_of(count: int) -> tuple[int, int]:
    """Two different indexes below `count` (at least 2), drawn at random."""
    # Load balancing draws, not secrets: the fast Mersenne Twister is the right tool.
    first = int(random() * count)  # nosec B311
    second = int(random() * (count - 1))  # nosec B311
    return first, second + 1 if second >= first else second


def smooth_rotation(weighted: Sequence[tuple[int, int]]) -> list[int]:
    """The turns of nginx's smooth weighted round robin: `(slot, weight)` pairs become a sequence
    in which each slot comes weight/gcd times, spread out (weights 5, 1, 1 give a a b a c a a,
    not a a a a a b c). Equal weights give each slot once, in order."""
    if not weighted:
        return []
    divisor = reduce(math.gcd, (weight for _, weight in weighted))
    weights = [weight // divisor for _, weight in weighted]
    total = sum(weights)
    current = [0] * len(weights)
    turns = []
    for _ in range(total):
        for position, weight in enumerate(weights):
            current[position] += weight
        best = max(range(len(current)), key=current.__getitem__)
        current[best] -= total
        turns.append(weighted[best][0])
    return turns
