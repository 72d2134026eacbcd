"""The state every process of the gateway shares: one rotation, one health state, all counters.

The gateway runs several worker processes (gateway_service/supervisor.py). For it to be one
gateway rather than several, they share one block of memory, mapped before they are forked:

- **The backend table**: one slot per backend (a storage service's address), holding its health
  state, and the rotation order. The control process (health checks and DNS discovery) is the
  only one that changes which slots are in the table; it publishes a new order under a sequence
  number (a seqlock), and workers read it again when the number moved. A backend added at run
  time (the admin API, SIGHUP) may come from an entry the workers were not started with: its
  slot then names no `STORAGE_SERVICES` index but carries the entry's URL (`url()`).
- **The rotation**: the sequence of slots requests go to in turn, written with the order: each
  backend in rotation as many times as its weight (a smooth weighted round robin, so workers'
  `pick()` stays a walk along it), a draining one not at all. One position for all workers,
  moved under `lock`, so that 30 requests spread 10/10/10 over three services whichever workers
  they land on.
- **Counters**: each worker counts in an area of its own (requests served per backend, outcomes,
  latency histogram, responses by status, retries; attempts in flight per backend for
  `BALANCING=least_request`, requests in flight and retrying for the retry budget), so counting
  takes no lock and no shared cache line; `/status`, `/metrics` and those options add the areas
  up. A worker's replacement zeroes what is in flight in its area (`attach`). The alternative,
  prometheus-client's multiprocess mode, writes a file per process and metric and still needs
  the health state shared some other way.

The lock is `flock` on a memory file that each process opens for itself: the kernel releases it
when its holder dies, so a worker killed at any instant cannot leave the others waiting. One
lock and unlock cost about 0.8 us here (a POSIX semaphore, 0.06 us, stays locked for ever when
its holder is killed while holding it). With one worker nothing needs it, and it is not taken.

Words are 8 bytes, read as ints through `q` and as floats through `d` (the same memory); an
aligned 8-byte store is atomic on the machines Python runs on, so a reader never sees half of one.
"""

import contextlib
import fcntl
import mmap
import os
from array import array
from collections.abc import Iterator, Sequence

WORD = 8
# Backends at most (addresses of all STORAGE_SERVICES names together); discovery logs and
# leaves out addresses beyond this.
MAX_BACKENDS = 256
# An address, or the name itself when discovery is off (a DNS name is at most 253 bytes).
ADDRESS_BYTES = 256

# What an attempt on a backend can end in: the proxy's outcomes and UpstreamError's kinds.
OUTCOMES = (
    "success", "aborted", "http_5xx", "connect_refused", "connect_error", "connect_timeout",
    "read_timeout", "reset", "protocol_error", "head_too_large",
)  # fmt: skip
OUTCOME_INDEX = {outcome: index for index, outcome in enumerate(OUTCOMES)}
# Upper bounds (seconds) of the upstream latency histogram exported on /metrics.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Status codes counted per worker: every code a client can get (499: the client closed first).
STATUS_CODES = 600

# A backend's slot: its identity and health state (words; `f` marks a float).
S_ID = 0  # unique over the gateway's life; 0: the slot is free
S_STORAGE = 1  # index of its STORAGE_SERVICES entry
S_ACTIVE_UP = 2
S_PROBATION = 3
S_BANNED_UNTIL = 4  # f, monotonic time
S_PROBE_PASSES = 5
S_PROBE_FAILS = 6
S_WINDOW_START = 7  # f
S_WINDOW_FAILS = 8
S_CONSECUTIVE_FAILURES = 9
S_LAST_CHECKED = 10  # f, wall-clock time; NaN: never
S_LAST_CHECK_LATENCY = 11  # f; NaN: never
S_RETURNED_AT = 12  # f, monotonic time it came (or comes) back into rotation; -inf: from the start
S_WEIGHT = 13  # its share of the rotation, 1..100 (the admin API sets it)
S_DRAINING = 14  # 1: out of the rotation, even in panic mode; requests on it finish
S_SLOW_CREDIT = 15  # f, slow start's share of turns earned and not yet taken (round robin)
SLOT_WORDS = 32  # room for what issue 19 adds (weights, draining, slow start)

# S_STORAGE of a backend whose entry came at run time: its URL is in the slot's URL area.
RUNTIME_STORAGE = -1
# An entry's URL: http://, a DNS name (253 bytes at most), a port.
URL_BYTES = 272
# The rotation (a slot per turn): every backend in it once per unit of its weight.
MAX_WEIGHT = 100
ROTATION_WORDS = MAX_BACKENDS * MAX_WEIGHT

# A worker's counters for one backend.
C_SERVED = 0
C_OUTCOMES = 1
C_LATENCY = C_OUTCOMES + len(OUTCOMES)
C_LATENCY_SUM = C_LATENCY + len(LATENCY_BUCKETS) + 1  # f
# Attempts on it now: least_request compares them, and a drain waits until their sum over
# workers is 0, so nothing it let through reaches the service later.
C_IN_FLIGHT = C_LATENCY_SUM + 1
BACKEND_COUNTER_WORDS = C_IN_FLIGHT + 1

# A worker's counters that are not per backend.
G_RETRIES = 0
G_CONNECTIONS = 1  # client connections accepted
G_OPEN = 2  # client connections open now
G_RESPONSES = 3  # + status code
# The retry budget's view (counted when RETRY_BUDGET_PERCENT is under 100).
G_ACTIVE = G_RESPONSES + STATUS_CODES  # requests for /data in flight now
G_RETRYING = G_ACTIVE + 1  # of those, the ones that have made a retry
G_RETRIES_REFUSED = G_ACTIVE + 2  # retries not made: the budget was spent
G_EJECTIONS_REFUSED = G_ACTIVE + 3  # passive ejections not made: MAX_EJECTION_PERCENT was reached
GLOBAL_COUNTER_WORDS = G_ACTIVE + 4
# The header: the table's sequence number and size, the rotation, then the order.
H_SEQUENCE = 0  # odd while the control process rewrites the order
H_COUNT = 1
H_NEXT = 2  # the rotation: index into the order of the backend to try next
H_NEXT_ID = 3  # the last id given to a backend (ids are never reused; 0 is a free slot)
H_ORDER = 8
HEADER_WORDS = H_ORDER + MAX_BACKENDS
# The rotation area (after the URLs): its length, whether the entries were ever changed at run
# time (a restarted control process then takes them from the table, not from the settings),
# then the slots.
R_COUNT = 0
R_EDITED = 1
R_SLOTS = 2


class ProcessLock:
    """A lock between processes, released by the kernel when its holder dies (see above)."""

    def __init__(self) -> None:
        self._file = os.memfd_create("gateway-lock", os.MFD_CLOEXEC)
        self._fd = self._file

    def reopen(self) -> None:
        """In a forked child: a descriptor of its own (flock locks belong to the open file, which
        a forked child would otherwise share with its parent and siblings)."""
        self._fd = os.open(f"/proc/self/fd/{self._file}", os.O_RDWR | os.O_CLOEXEC)

    def acquire(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()


class NoLock:
    """What a board with one worker uses: nobody else takes the rotation."""

    def reopen(self) -> None:
        pass

    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        yield


class Board:
    """The shared block: header, `MAX_BACKENDS` slots, then one counter area per worker."""

    def __init__(self, workers: int = 1, *, locked: bool = False) -> None:
        if workers < 1:
            raise ValueError("a board needs at least one worker")
        self.workers = workers
        self.slots_at = HEADER_WORDS
        self.addresses_at = (self.slots_at + MAX_BACKENDS * SLOT_WORDS) * WORD
        self.urls_at = self.addresses_at + MAX_BACKENDS * ADDRESS_BYTES
        words_at = self.urls_at + MAX_BACKENDS * URL_BYTES
        self.rotation_at = -(-words_at // WORD)  # in words, rounded up
        self.counters_at = self.rotation_at + R_SLOTS + ROTATION_WORDS
        self.worker_words = MAX_BACKENDS * BACKEND_COUNTER_WORDS + GLOBAL_COUNTER_WORDS
        size = (self.counters_at + workers * self.worker_words) * WORD
        # Anonymous and MAP_SHARED (mmap's default): forked children see the same pages, and
        # pages nobody touches cost no memory.
        self._map = mmap.mmap(-1, size)
        view = memoryview(self._map)
        self.q = view.cast("q")
        self.d = view.cast("d")
        self.bytes = view
        # One worker takes the rotation alone, unless the control process must know, as a drain
        # does, that no pick is under way with the rotation it replaced (`locked`).
        shared = workers > 1 or locked
        self.lock: ProcessLock | NoLock = ProcessLock() if shared else NoLock()
        # Which counter area this process writes: set in each worker after the fork.
        self.worker = 0

    def attach(self, worker: int) -> None:
        """In a forked child: count in area `worker` (0-based), and lock for itself."""
        if not 0 <= worker < self.workers:
            raise ValueError(f"worker {worker} of {self.workers}")
        self.worker = worker
        self.lock.reopen()
        # A replacement for a worker that died starts with nothing in flight: what its
        # predecessor left counted would never be taken off.
        q = self.q
        for slot in range(MAX_BACKENDS):
            q[self.counter_base(worker, slot) + C_IN_FLIGHT] = 0
        q[self.global_base(worker) + G_ACTIVE] = 0
        q[self.global_base(worker) + G_RETRYING] = 0

    def attach_control(self) -> None:
        """In the forked control process: it counts nothing, but takes the lock."""
        self.lock.reopen()

    # Slots

    def slot_base(self, slot: int) -> int:
        return self.slots_at + slot * SLOT_WORDS

    def counter_base(self, worker: int, slot: int) -> int:
        return self.counters_at + worker * self.worker_words + slot * BACKEND_COUNTER_WORDS

    def global_base(self, worker: int) -> int:
        return self.counters_at + worker * self.worker_words + MAX_BACKENDS * BACKEND_COUNTER_WORDS

    def address(self, slot: int) -> str:
        return self._text(self.addresses_at + slot * ADDRESS_BYTES, ADDRESS_BYTES)

    def set_address(self, slot: int, address: str) -> None:
        self._set_text(self.addresses_at + slot * ADDRESS_BYTES, ADDRESS_BYTES, "address", address)

    def url(self, slot: int) -> str:
        """The URL of the entry a `RUNTIME_STORAGE` slot comes from."""
        return self._text(self.urls_at + slot * URL_BYTES, URL_BYTES)

    def set_url(self, slot: int, url: str) -> None:
        self._set_text(self.urls_at + slot * URL_BYTES, URL_BYTES, "URL", url)

    def _text(self, start: int, size: int) -> str:
        return bytes(self.bytes[start : start + size]).rstrip(b"\0").decode()

    def _set_text(self, start: int, size: int, what: str, text: str) -> None:
        encoded = text.encode()
        if len(encoded) > size:
            raise ValueError(f"{what} {text!r} is over {size} bytes")
        self.bytes[start : start + size] = encoded.ljust(size, b"\0")

    def clear_slot(self, slot: int) -> None:
        """Zero a slot and every worker's counters for it, for a new backend."""
        base = self.slot_base(slot)
        self.q[base : base + SLOT_WORDS] = _zeros(SLOT_WORDS)
        for worker in range(self.workers):
            base = self.counter_base(worker, slot)
            self.q[base : base + BACKEND_COUNTER_WORDS] = _zeros(BACKEND_COUNTER_WORDS)

    def free_slots(self, in_use: set[int]) -> Iterator[int]:
        return (slot for slot in range(MAX_BACKENDS) if slot not in in_use)

    def next_id(self) -> int:
        self.q[H_NEXT_ID] += 1
        return self.q[H_NEXT_ID]

    # The order (seqlock: one writer, the control process; readers retry a torn read)

    @property
    def sequence(self) -> int:
        return self.q[H_SEQUENCE]

    def read_order(self) -> tuple[int, list[int]]:
        """(sequence, slots in the table's order), consistent with each other."""
        sequence, order, _ = self.read_table()
        return sequence, order

    def read_table(self) -> tuple[int, list[int], list[int]]:
        """(sequence, slots in the table's order, the rotation), consistent with each other."""
        q = self.q
        rotation_at = self.rotation_at + R_SLOTS
        while True:
            before = q[H_SEQUENCE]
            if before % 2:
                continue  # being rewritten; the writer is a few microseconds from done
            count = q[H_COUNT]
            order = q[H_ORDER : H_ORDER + count].tolist()
            turns = q[self.rotation_at + R_COUNT]
            rotation = q[rotation_at : rotation_at + turns].tolist()
            if q[H_SEQUENCE] == before:
                return before, order, rotation

    def write_order(self, slots: Sequence[int], rotation: Sequence[int] | None = None) -> None:
        """Publish the table's slots and the rotation over them (by default each slot once)."""
        rotation = slots if rotation is None else rotation
        if len(rotation) > ROTATION_WORDS:
            raise ValueError(f"a rotation of {len(rotation)} turns is over {ROTATION_WORDS}")
        q = self.q
        rotation_at = self.rotation_at + R_SLOTS
        q[H_SEQUENCE] += 1
        q[H_COUNT] = len(slots)
        q[H_ORDER : H_ORDER + len(slots)] = _words(slots)
        q[self.rotation_at + R_COUNT] = len(rotation)
        q[rotation_at : rotation_at + len(rotation)] = _words(rotation)
        q[H_SEQUENCE] += 1

    @property
    def edited(self) -> bool:
        """Whether the entries were changed at run time (the admin API, SIGHUP)."""
        return bool(self.q[self.rotation_at + R_EDITED])

    def mark_edited(self) -> None:
        self.q[self.rotation_at + R_EDITED] = 1

    # Worker-wide counters

    def sum_words(self, offset_of: "Sequence[int]") -> list[int]:
        """For each offset into a worker's global area, the sum over all workers."""
        q = self.q
        bases = [self.global_base(worker) for worker in range(self.workers)]
        return [sum(q[base + offset] for base in bases) for offset in offset_of]


def _zeros(count: int) -> memoryview:
    return memoryview(array("q", bytes(count * WORD)))


def _words(values: Sequence[int]) -> memoryview:
    return memoryview(array("q", values))
