"""What a run and a comparison produce, typed: the --stats-json file and the results folder.

A run's figures are written by the locust process (`RunResult.to_json`, the --stats-json file)
and read back by the comparison (`RunResult.from_json`); the comparison keeps every run's figures
and its settings in `results.json` and `meta.json`, so `--render` can redo the report from them.
The JSON keeps the names and shapes it always had: files from earlier comparisons still load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadcompare.analysis import BrownOutFigures, Bucket, FailoverFigures, OutageFigures
from loadcompare.plan import Durations, Scenario

RESULTS_FILE = "results.json"
META_FILE = "meta.json"


@dataclass(frozen=True, slots=True)
class Event:
    """Something the run did or saw (a fault, a recovery, a `/status` change), when it happened."""

    name: str
    t: float  # seconds since the run started
    detail: str


@dataclass(frozen=True, slots=True)
class LocustTotals:
    """Locust's own aggregated figures (the same numbers its HTML report shows)."""

    requests: int
    failures: int
    fail_ratio: float
    rps: float
    # None without requests: a figure that does not exist is not 0.
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.requests:  # the percentiles are left out, not written as null
            return {key: data[key] for key in ("requests", "failures", "fail_ratio", "rps")}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LocustTotals:
        return cls(
            requests=data["requests"],
            failures=data["failures"],
            fail_ratio=data["fail_ratio"],
            rps=data["rps"],
            p50_ms=data.get("p50_ms"),
            p95_ms=data.get("p95_ms"),
            p99_ms=data.get("p99_ms"),
            max_ms=data.get("max_ms"),
        )


@dataclass(frozen=True, slots=True)
class RunSettings:
    """The load a run was given (the scenario's own settings are in `Settings`)."""

    users: int
    spawn_rate: float
    workers: int  # locust workers that ran the users; 0: the local runner did
    user_rps: float
    durations: Durations
    target_service: str
    compose_project: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSettings:
        d = data["durations"]
        return cls(
            users=data["users"],
            spawn_rate=data["spawn_rate"],
            workers=data["workers"],
            user_rps=data["user_rps"],
            durations=Durations(
                steady_s=d["steady_s"],
                warmup_s=d["warmup_s"],
                fault_s=d["fault_s"],
                recovery_s=d["recovery_s"],
            ),
            target_service=data["target_service"],
            compose_project=data["compose_project"],
        )


@dataclass(frozen=True, slots=True)
class GatewayView:
    """When the gateway's `/status` marked the target down, then up again (seconds after)."""

    unavailable_after_s: float | None
    available_after_s: float | None


@dataclass(frozen=True, slots=True)
class RunResult:
    """One scenario against one gateway: everything the summary, the charts and the gate use."""

    scenario: Scenario
    host: str
    started_at: str  # UTC, ISO 8601 to the second
    duration_s: float
    settings: RunSettings
    locust: LocustTotals
    expected_instances: int
    share: dict[str, int]  # successful responses per storage instance, largest first
    share_max_deviation_pp: float | None
    status_counts: dict[str, int]
    events: tuple[Event, ...]
    fault_t: float | None  # when the fault action began; None: it did not complete
    recover_t: float | None  # when the recovery action began; None: it did not complete
    target_instance: str | None  # the failed service's `instance`; None unless one service failed
    failover: FailoverFigures | None  # one service failed and came back
    outage: OutageFigures | None  # every service failed and came back
    gateway_view: GatewayView | None
    timeline: tuple[Bucket, ...]
    violations: tuple[str, ...]  # thresholds a steady run exceeded
    warnings: tuple[str, ...]
    error: str | None  # why the figures are missing or incomplete
    brown_out: BrownOutFigures | None = None  # every service browned out and back

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.value,
            "host": self.host,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "settings": self.settings.to_json(),
            "locust": self.locust.to_json(),
            "expected_instances": self.expected_instances,
            "share": self.share,
            "share_max_deviation_pp": self.share_max_deviation_pp,
            "status_counts": self.status_counts,
            "events": [asdict(e) for e in self.events],
            "fault_t": self.fault_t,
            "recover_t": self.recover_t,
            "target_instance": self.target_instance,
            "failover": _or_none(self.failover),
            "outage": _or_none(self.outage),
            "gateway_view": _or_none(self.gateway_view),
            "timeline": [asdict(b) for b in self.timeline],
            "violations": list(self.violations),
            "warnings": list(self.warnings),
            "error": self.error,
            "brown_out": _or_none(self.brown_out),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunResult:
        failover, outage, view = data["failover"], data["outage"], data["gateway_view"]
        return cls(
            scenario=Scenario(data["scenario"]),
            host=data["host"],
            started_at=data["started_at"],
            duration_s=data["duration_s"],
            settings=RunSettings.from_json(data["settings"]),
            locust=LocustTotals.from_json(data["locust"]),
            expected_instances=data["expected_instances"],
            share=dict(data["share"]),
            share_max_deviation_pp=data["share_max_deviation_pp"],
            status_counts=dict(data["status_counts"]),
            events=tuple(Event(e["name"], e["t"], e["detail"]) for e in data["events"]),
            fault_t=data["fault_t"],
            recover_t=data["recover_t"],
            target_instance=data["target_instance"],
            failover=None if failover is None else _failover(failover),
            outage=None if outage is None else _outage(outage),
            gateway_view=None
            if view is None
            else GatewayView(view["unavailable_after_s"], view["available_after_s"]),
            timeline=tuple(_bucket(b) for b in data["timeline"]),
            violations=tuple(data["violations"]),
            warnings=tuple(data["warnings"]),
            error=data["error"],
            # Absent from the files of comparisons made before the brown-out scenario.
            brown_out=None if (b := data.get("brown_out")) is None else BrownOutFigures(**b),
        )

    def write(self, path: Path) -> None:
        """The --stats-json file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def read(cls, path: Path) -> RunResult:
        return cls.from_json(json.loads(path.read_text()))


def _or_none(
    figures: FailoverFigures | OutageFigures | GatewayView | BrownOutFigures | None,
) -> Any:
    return None if figures is None else asdict(figures)


def _failover(data: Mapping[str, Any]) -> FailoverFigures:
    return FailoverFigures(
        requests_during=data["requests_during"],
        errors_during=data["errors_during"],
        errors_after=data["errors_after"],
        last_from_target_s=data["last_from_target_s"],
        last_error_s=data["last_error_s"],
        detection_s=data["detection_s"],
        # Results written before the figures shared toolkit/recovery.py's names still load.
        back_in_rotation_s=data.get("back_in_rotation_s", data.get("recovery_s")),
        p99_during_ms=data["p99_during_ms"],
    )


def _outage(data: Mapping[str, Any]) -> OutageFigures:
    return OutageFigures(
        requests_during=data["requests_during"],
        status_during=dict(data["status_during"]),
        latency_503_p50_ms=data["latency_503_p50_ms"],
        latency_503_max_ms=data["latency_503_max_ms"],
        first_2xx_after_s=data.get("first_2xx_after_s", data.get("resume_s")),
        errors_after=data["errors_after"],
    )


def _bucket(data: Mapping[str, Any]) -> Bucket:
    return Bucket(
        t=data["t"],
        requests=data["requests"],
        failures=data["failures"],
        p50_ms=data["p50_ms"],
        p95_ms=data["p95_ms"],
        by_instance=dict(data["by_instance"]),
    )


# gateway name -> its run's result (None when the run produced none), in the gateways' order
Runs = Mapping[str, RunResult | None]
# scenario -> its runs, in the order they ran
Results = Mapping[Scenario, Runs]


# The keys of meta.json that are ComparisonMeta's own fields; every other key is `context`.
_STATED = frozenset(
    ("mode", "started_at", "duration", "gateways", "load", "load generator", "phases", "rerun")
)


@dataclass(frozen=True, slots=True)
class ComparisonMeta:
    """How a comparison ran, as the summary states it (the `Settings, versions, machine` list)."""

    mode: str  # "short" or "full"
    started_at: str
    duration: str
    gateways: str
    load: str
    load_generator: str
    phases: str
    rerun: str
    # The machine, the versions and each deployment, one line each, in the order stated.
    context: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, str]:
        return {
            "mode": self.mode,
            "started_at": self.started_at,
            "duration": self.duration,
            "gateways": self.gateways,
            "load": self.load,
            "load generator": self.load_generator,
            "phases": self.phases,
            "rerun": self.rerun,
            **self.context,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, str]) -> ComparisonMeta:
        return cls(
            mode=data.get("mode", "full"),
            started_at=data.get("started_at", "?"),
            duration=data.get("duration", "?"),
            gateways=data.get("gateways", "?"),
            load=data.get("load", "?"),
            load_generator=data.get("load generator", "one locust process"),
            phases=data.get("phases", "?"),
            rerun=data.get("rerun", "?"),
            context={k: v for k, v in data.items() if k not in _STATED},
        )


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every scenario against every gateway, and how the comparison ran."""

    results: Results
    meta: ComparisonMeta

    @property
    def gateways(self) -> list[str]:
        """The gateways compared, in their columns' order."""
        return list(next(iter(self.results.values()), {}))

    def results_json(self) -> dict[str, dict[str, Any]]:
        return {
            scenario.value: {g: None if r is None else r.to_json() for g, r in runs.items()}
            for scenario, runs in self.results.items()
        }

    @staticmethod
    def results_from_json(data: Mapping[str, Mapping[str, Any]]) -> Results:
        return {
            Scenario(scenario): {
                g: None if r is None else RunResult.from_json(r) for g, r in runs.items()
            }
            for scenario, runs in data.items()
        }

    def save(self, folder: Path) -> None:
        """`results.json` and `meta.json` in the comparison's results folder."""
        (folder / RESULTS_FILE).write_text(json.dumps(self.results_json()) + "\n")
        (folder / META_FILE).write_text(json.dumps(self.meta.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Comparison:
        return cls(
            results=cls.results_from_json(json.loads((folder / RESULTS_FILE).read_text())),
            meta=ComparisonMeta.from_json(json.loads((folder / META_FILE).read_text())),
        )
