"""Recovery figures in one vocabulary, for every tool that breaks storage and brings it back.

"Back" is the moment the tool made the storage service(s) healthy again; every figure counts
seconds from then, as the client saw it:

- `first_2xx_after_s`: the first successful answer through the gateway (after a full outage:
  how long clients kept getting errors; the contract suite's scenario 6 reports the same);
- `back_in_rotation_s`: the first successful answer served by the service that had failed
  (after one service failed: how long until the gateway used it again);
- `last_error_after_s`: the last failed answer (an upper bound where answers come in buckets);
- `errors_after`: how many answers failed after it was back.

None means it did not happen within the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer, or `count` answers of the same kind, seen by a client at `t` seconds."""

    t: float
    ok: bool
    instance: str | None = None
    count: int = 1
    t_last: float | None = None
    """Where answers are bucketed: when the bucket's last one may have come (else `t`)."""


@dataclass(frozen=True, slots=True)
class AfterRecovery:
    first_2xx_after_s: float | None
    back_in_rotation_s: float | None
    last_error_after_s: float | None
    errors_after: int


def after_recovery(
    answers: Iterable[Answer], back_t: float, failed_instance: str | None = None
) -> AfterRecovery:
    """The figures for the answers seen at or after `back_t`."""
    after = [a for a in answers if a.t >= back_t]
    ok = [a.t for a in after if a.ok]
    from_failed = [a.t for a in after if a.ok and a.instance == failed_instance]
    errors = [a for a in after if not a.ok]
    last_error = max((a.t if a.t_last is None else a.t_last for a in errors), default=None)
    return AfterRecovery(
        first_2xx_after_s=_since(min(ok, default=None), back_t),
        back_in_rotation_s=(
            _since(min(from_failed, default=None), back_t) if failed_instance else None
        ),
        last_error_after_s=_since(last_error, back_t),
        errors_after=sum(a.count for a in errors),
    )


def _since(t: float | None, back_t: float) -> float | None:
    return None if t is None else t - back_t
