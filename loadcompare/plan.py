"""Scenarios and their phases: how long each part of a run lasts and what happens at its start."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scenario(StrEnum):
    STEADY = "steady"
    FAILOVER_KILL = "failover-kill"  # one storage container killed through the Docker API
    FAILOVER_FAULT = "failover-fault"  # one storage service switched to `unavailable`
    ALL_DOWN = "all-down"  # every storage service switched to `unavailable`
    BROWN_OUT = "brown-out"  # every storage service slow and failing half its requests (`flaky`)


class Action(StrEnum):
    NONE = "none"
    FAIL = "fail"
    RECOVER = "recover"


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    start_s: float
    end_s: float
    action: Action  # done once when the phase begins


@dataclass(frozen=True, slots=True)
class Durations:
    steady_s: float = 60.0
    warmup_s: float = 15.0
    fault_s: float = 20.0
    recovery_s: float = 25.0


def phases(scenario: Scenario, durations: Durations) -> list[Phase]:
    """The phases of one run, back to back from 0 to the end of the run."""
    if scenario is Scenario.STEADY:
        return [Phase("steady", 0.0, durations.steady_s, Action.NONE)]
    fault_start = durations.warmup_s
    recovery_start = fault_start + durations.fault_s
    return [
        Phase("warmup", 0.0, fault_start, Action.NONE),
        Phase("fault", fault_start, recovery_start, Action.FAIL),
        Phase("recovery", recovery_start, recovery_start + durations.recovery_s, Action.RECOVER),
    ]


def total_s(plan: list[Phase]) -> float:
    return plan[-1].end_s if plan else 0.0
