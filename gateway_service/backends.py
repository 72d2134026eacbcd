"""What the gateway knows about each storage service, and the round-robin choice among them.

A backend is one address of one `STORAGE_SERVICES` entry (gateway_service/discovery.py finds
them). It is in rotation when the active checker has not taken it out (`HEALTH_FALL` bad probes
in a row; `HEALTH_RISE` good ones bring it back) and it is not serving a passive ban (`MAX_FAILS`
failed requests within `FAIL_TIMEOUT` take it out for `FAIL_TIMEOUT`, as in nginx). Everything
here is synchronous and takes the time as an argument, so tests drive it without sleeping.
"""

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway_service.settings import StorageURL

# Upper bounds (seconds) of the upstream latency histogram exported on /metrics.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(eq=False, slots=True)
class Backend:
    """One address of a storage service: where it is, its health state and counters."""

    storage: StorageURL  # the STORAGE_SERVICES entry it came from
    address: str  # what connections go to: an IP address, or the entry's host when not resolved
    # The Host header sent to it: the name as the user wrote it, whatever the address.
    host_header: bytes = field(init=False)
    # Health state.
    active_up: bool = True  # optimistic until a probe says otherwise, like nginx and HAProxy
    # Found after start-up: out of rotation until its first good probe (Envoy's STRICT_DNS).
    on_probation: bool = False
    retired: bool = False  # no longer resolved: gets no new requests, and its changes go unsaid
    banned_until: float = 0.0  # monotonic time; a passive ban lasts until then
    probe_passes: int = 0
    probe_fails: int = 0
    window_start: float = 0.0
    window_fails: int = 0
    consecutive_failures: int = 0
    last_checked: float | None = None  # wall-clock time of the last probe
    last_check_latency: float | None = None
    # Counters exported on /status and /metrics; plain ints keep the hot path cheap.
    requests_served: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def __post_init__(self) -> None:
        self.host_header = self.storage.host_header.encode()

    @property
    def url(self) -> str:
        return self.storage.url

    @property
    def label(self) -> str:
        """How logs and error messages name it: the entry's URL, and the address when resolved."""
        if self.address == self.storage.host:
            return self.storage.url
        return f"{self.storage.url} ({self.address})"

    def available(self, now: float) -> bool:
        return self.active_up and now >= self.banned_until

    def worth_a_panic_try(self) -> bool:
        """Whether to try it when nothing is in rotation: not when probes say it is down and
        none has passed since, nor when it is new and has never answered one."""
        return (self.active_up or self.probe_passes > 0) and not self.on_probation

    def observe(self, outcome: str, seconds: float) -> None:
        """Count one attempt's outcome and latency."""
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.latency_counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    max_fails: int = 1
    fail_timeout: float = 10.0
    rise: int = 2
    fall: int = 2


StateListener = Callable[[Backend, bool, str], None]
# One backend to be: the entry it comes from and the address it resolved to.
Member = tuple[StorageURL, str]


class Balancer:
    """Round-robin over the backends in rotation, and the health bookkeeping behind it."""

    def __init__(
        self,
        storages: Sequence[StorageURL] | Sequence[Member],
        policy: HealthPolicy,
        on_change: StateListener | None = None,
    ) -> None:
        """`storages`: the backends to start with, in rotation order, each one (entry, address)
        or an entry alone (its host is then the address). They start in rotation."""
        self.backends = [
            Backend(*member) if isinstance(member, tuple) else Backend(member, member.host)
            for member in storages
        ]
        self.policy = policy
        self._next = 0
        self._on_change = on_change

    def replace(
        self, members: Sequence[Member], *, on_probation: bool
    ) -> tuple[list[Backend], list[Backend]]:
        """Make the backends exactly `members`, in that order; return (added, removed).

        Backends still listed keep their state and counters. New ones start out of rotation
        until their first good probe when `on_probation` (no active checks: in at once). Removed
        ones get no new requests; requests already on them finish. The rotation goes on from
        the backend that was next, so a change does not restart it."""
        current = {(backend.url, backend.address): backend for backend in self.backends}
        upcoming = self.backends[self._next] if self.backends else None
        backends, added = [], []
        for storage, address in members:
            backend = current.pop((storage.url, address), None)
            if backend is None:
                backend = Backend(storage, address, active_up=not on_probation)
                backend.on_probation = on_probation
                added.append(backend)
            backends.append(backend)
        removed = list(current.values())
        for backend in removed:
            backend.retired = True
        self.backends = backends
        if upcoming is not None and not upcoming.retired:
            self._next = backends.index(upcoming)
        else:
            self._next = self._next % len(backends) if backends else 0
        return added, removed

    def pick(self, now: float, tried: Sequence[Backend] = ()) -> Backend | None:
        """The next backend in rotation that this request has not tried yet, or None.

        Every attempt, first or retry, takes the next turn of the one shared rotation (as nginx
        does), so when a service dies under load its in-flight requests are retried across all
        the survivors rather than piling onto the one listed after it.

        When no backend at all is in rotation, each is tried anyway (Envoy's panic mode; nginx
        resets its failure counts then): health state is a guess, and a guess that every
        service is down must not keep a recovered one idle for `FAIL_TIMEOUT`. Except those
        the active checker holds down with no good probe since: that verdict is fresh (one
        `HEALTH_INTERVAL` old at most), and a service that comes back passes a probe within an
        interval; trying them would make every request of a full outage wait out a connect
        timeout per service instead of answering 503 at once."""
        backends = self.backends
        count = len(backends)
        start = self._next
        for step in range(count):
            index = (start + step) % count
            backend = backends[index]
            if backend.available(now) and backend not in tried:
                self._next = (index + 1) % count
                return backend
        if any(backend.available(now) for backend in backends):
            return None  # the ones in rotation were tried; the others stay out
        for step in range(count):
            index = (start + step) % count
            backend = backends[index]
            if backend.worth_a_panic_try() and backend not in tried:
                self._next = (index + 1) % count
                return backend
        return None

    def in_rotation(self, now: float) -> int:
        return sum(backend.available(now) for backend in self.backends)

    # Passive health: outcomes of real requests.

    def record_success(self, backend: Backend, now: float) -> None:
        backend.requests_served += 1
        backend.consecutive_failures = 0
        backend.window_fails = 0
        if backend.banned_until > now:
            # Only a panic-mode attempt reaches a banned backend: it has proved itself.
            backend.banned_until = 0.0
            if backend.available(now):
                self._notify(backend, True, "passive: a request succeeded")

    def record_failure(self, backend: Backend, now: float, reason: str) -> None:
        backend.consecutive_failures += 1
        policy = self.policy
        if now - backend.window_start > policy.fail_timeout:
            backend.window_start = now
            backend.window_fails = 0
        backend.window_fails += 1
        if backend.window_fails >= policy.max_fails:
            was_available = backend.available(now)
            backend.banned_until = now + policy.fail_timeout
            backend.window_fails = 0
            if was_available:
                self._notify(backend, False, f"passive: {reason}")

    # Active health: results of /health probes.

    def record_probe(
        self, backend: Backend, ok: bool, latency: float, now: float, wall_time: float
    ) -> None:
        backend.last_checked = wall_time
        backend.last_check_latency = latency
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
