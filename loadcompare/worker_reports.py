"""What locust workers tell the master about the responses they saw, and how the master merges it.

In distributed mode the users run on the workers, while the fault schedule and the figures stay on
the master. Each worker sends every response it recorded (not per-worker summaries: percentiles and
first/last times do not merge), so the master computes exactly what a local run computes.

Times travel as each worker's wall clock (`time.time()`); the master rebases them onto its own run
start. That needs the machines' clocks to agree (NTP), which `Collector.clock_gaps` checks roughly.

Nothing here touches the network or locust, so the unit tests cover it without either.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

from loadcompare.analysis import Sample

# Key of our part of the report locust's own stats message carries (`report_to_master`), so the
# samples arrive in the same message as the stats they belong to.
REPORT_KEY = "loadtests"
# Custom message the master sends each worker at the end of a run: stop, and report what is left.
FINAL_REQUEST = "loadtests_final"
# A worker whose reports seem to come from further in the past or future than this has a clock
# that disagrees with the master's; the phase figures are then off by about as much.
CLOCK_TOLERANCE_S = 1.0


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """Responses one worker recorded since its previous report."""

    samples: tuple[Sample, ...]  # `t` is the worker's wall clock, not yet seconds since start
    sent_at: float  # the worker's wall clock when it sent the report
    final_for: str | None = None  # the master's final request this answers; None: periodic

    def encode(self) -> dict[str, Any]:
        """Plain lists and scalars: what locust's message encoding (msgpack) carries."""
        return {
            "samples": [[s.t, s.latency_ms, s.status, s.instance, s.ok] for s in self.samples],
            "sent_at": self.sent_at,
            "final_for": self.final_for,
        }

    @classmethod
    def decode(cls, data: Any) -> WorkerReport:
        """Raises ValueError for anything but what `encode` makes."""
        try:
            samples = tuple(
                Sample(
                    t=float(t),
                    latency_ms=float(latency),
                    status=int(status),
                    instance=None if instance is None else str(instance),
                    ok=bool(ok),
                )
                for t, latency, status, instance, ok in data["samples"]
            )
            final_for = None if data["final_for"] is None else str(data["final_for"])
            return cls(samples, float(data["sent_at"]), final_for)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a load test worker report: {error!r}") from None


class SampleBuffer:
    """A worker's responses since its last report, timed on its wall clock."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._samples: list[Sample] = []

    def record(self, latency_ms: float, status: int, instance: str | None, ok: bool) -> None:
        self._samples.append(Sample(self._clock(), latency_ms, status, instance, ok))

    def report(self, final_for: str | None = None) -> WorkerReport:
        """Everything recorded since the previous report; the buffer starts empty again."""
        samples, self._samples = tuple(self._samples), []
        return WorkerReport(samples, self._clock(), final_for)


@dataclass(slots=True)
class Collector:
    """The master's side: every worker's samples of one run, and who has sent its last report."""

    _samples: list[Sample] = field(default_factory=list)
    _final: dict[str, str] = field(default_factory=dict)  # worker -> final request answered
    _gaps: dict[str, float] = field(default_factory=dict)  # worker -> min(received - sent)

    def add(self, worker: str, report: WorkerReport, received_at: float) -> None:
        self._samples.extend(report.samples)
        gap = received_at - report.sent_at
        self._gaps[worker] = min(gap, self._gaps.get(worker, gap))
        if report.final_for is not None:
            self._final[worker] = report.final_for

    def missing(self, workers: Collection[str], request: str) -> list[str]:
        """The workers that have not yet answered the final request `request`."""
        return sorted(w for w in workers if self._final.get(w) != request)

    def samples(self, started_wall: float) -> list[Sample]:
        """All workers' samples in time order, in seconds since the master started the run.

        Samples from before the start belong to an earlier run (the web UI can run several) and
        are left out.
        """
        rebased = (replace(s, t=s.t - started_wall) for s in self._samples)
        return sorted((s for s in rebased if s.t >= 0), key=lambda s: s.t)

    @property
    def workers(self) -> list[str]:
        """Every worker that reported anything."""
        return sorted(self._gaps)

    def clock_warnings(self) -> list[str]:
        """One line per worker whose clock seems to disagree with the master's.

        The smallest gap between sending and receiving a report is the delivery time plus the
        clocks' difference: below 0 the worker's clock is ahead; far above, it is behind (or every
        report was late, which says as much about the figures).
        """
        return [
            f"worker {worker}: reports arrive {gap:+.2f} s after they were sent by its clock; "
            "keep the machines' clocks in sync (NTP), the phase figures are off by as much"
            for worker, gap in sorted(self._gaps.items())
            if abs(gap) > CLOCK_TOLERANCE_S
        ]
