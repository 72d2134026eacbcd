"""What the gateway knows about each storage service, and the round-robin choice among them.

A backend is one address of one `STORAGE_SERVICES` entry (gateway_service/discovery.py finds
them). It is in rotation when the active checker has not taken it out (`HEALTH_FALL` bad probes
in a row; `HEALTH_RISE` good ones bring it back) and it is not serving a passive ban (`MAX_FAILS`
failed requests within `FAIL_TIMEOUT` take it out for `FAIL_TIMEOUT`, as in nginx).

Every process of the gateway sees the same backends, health state and rotation: they live on the
shared board (gateway_service/board.py), and `Backend` is a view of one slot of it. Everything here
is synchronous and takes the time as an argument, so tests drive it without sleeping.
"""

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce

from gateway_service.board import (
    C_IN_FLIGHT,
    C_LATENCY,
    C_LATENCY_SUM,
    C_OUTCOMES,
    C_SERVED,
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

    __slots__ = ("address", "base", "board", "counters", "host_header", "id", "slot", "storage")

    probe_passes = _Int(S_PROBE_PASSES)
    probe_fails = _Int(S_PROBE_FAILS)
    window_start = _Float(S_WINDOW_START)
    window_fails = _Int(S_WINDOW_FAILS)
    consecutive_failures = _Int(S_CONSECUTIVE_FAILURES)
    banned_until = _Float(S_BANNED_UNTIL)  # monotonic time; a passive ban lasts until then

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

    @property
    def in_flight(self) -> int:
        """Attempts on it, over all workers, that have not had their answer yet."""
        return self.board.in_flight(self.slot)

    def attempt_ended(self) -> None:
        """The exchange of an attempt `pick()` chose ended (answered, failed or abandoned)."""
        self.board.q[self.counters + C_IN_FLIGHT] -= 1

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


StateListener = Callable[[Backend, bool, str], None]
# Called in each process when the backends it sees change: (added, removed).
MembershipListener = Callable[[list[Backend], list[Backend]], None]
# One backend to be: the entry it comes from and the address it resolved to.
Member = tuple[StorageURL, str]


class Balancer:
    """Round-robin over the backends in rotation, and the health bookkeeping behind it."""

    def __init__(
        self,
        board: Board,
        storages: Sequence[StorageURL],
        policy: HealthPolicy,
        on_change: StateListener | None = None,
    ) -> None:
        """`storages`: the STORAGE_SERVICES entries (the board's slots name them by index)."""
        self.board = board
        self.storages = list(storages)
        self.policy = policy
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

    @classmethod
    def local(
        cls,
        members: Sequence[Member | StorageURL],
        policy: HealthPolicy,
        on_change: StateListener | None = None,
    ) -> "Balancer":
        """A balancer with a board of its own (one process), starting with `members` in rotation:
        each an (entry, address) pair, or an entry alone (its host is then the address)."""
        pairs = [m if isinstance(m, tuple) else (m, m.host) for m in members]
        storages = list(dict.fromkeys(storage for storage, _ in pairs))
        balancer = cls(Board(), storages, policy, on_change)
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
        self, members: Sequence[Member], *, on_probation: bool
    ) -> tuple[list[Backend], list[Backend]]:
        """Make the backends exactly `members`, in that order; return (added, removed).

        Only the process that runs discovery calls this. Backends still listed keep their state
        and counters. New ones start out of rotation until their first good probe when
        `on_probation` (no active checks: in at once). Removed ones get no new requests; requests
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
            q[base + S_DRAINING] = int(draining)
            if not draining:
                turns.append((slot, weight))
        return smooth_rotation(turns)

    def _upcoming(self) -> int | None:
        backends = self._rotation
        if not backends:
            return None
        return backends[self._q[H_NEXT] % len(backends)].slot

    def pick(self, now: float, tried: Sequence[Backend] = ()) -> Backend | None:
        """The next backend in rotation that this request has not tried yet, or None.

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

        The backend returned counts one more attempt in flight until `attempt_ended()`. The
        rotation is read under the lock, so once the control process has written one without a
        backend (a drain), no pick still walks the old one."""
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
                    q[backend.counters + C_IN_FLIGHT] += 1
                    return backend
            if any(backend.available(now) for backend in backends):
                return None  # the ones in rotation were tried; the others stay out
            for step in range(count):
                index = (start + step) % count
                backend = backends[index]
                if backend.worth_a_panic_try() and backend not in tried:
                    q[H_NEXT] = (index + 1) % count
                    q[backend.counters + C_IN_FLIGHT] += 1
                    return backend
            return None
        finally:
            lock.release()

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
        if q[base + S_WINDOW_FAILS]:
            q[base + S_WINDOW_FAILS] = 0
        if self.board.d[base + S_BANNED_UNTIL] > now:
            # Only a panic-mode attempt reaches a banned backend: it has proved itself.
            backend.banned_until = 0.0
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
            if banned:
                backend.banned_until = now + policy.fail_timeout
                backend.window_fails = 0
        if banned and was_available:
            self._notify(backend, False, f"passive: {reason}")

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
                self._notify(backend, True, "discovered: first good probe")
            elif not backend.active_up and backend.probe_passes >= policy.rise:
                backend.active_up = True
                # The checker saw it die and come back: that outranks an older passive ban.
                backend.banned_until = 0.0
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
