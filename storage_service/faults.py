"""Fault injection: make one instance misbehave on purpose without killing it."""

from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FaultMode(StrEnum):
    NORMAL = "normal"
    UNAVAILABLE = "unavailable"  # 503 on /health and /data
    ERROR = "error"  # 500 on /data; /health stays green, so only passive checks notice
    SLOW = "slow"  # /data answers after delay_ms
    FLAKY = "flaky"  # every second /data answers 500 (after delay_ms): a brown-out
    HANG = "hang"  # /data never answers


class Fault(BaseModel):
    """The fault state, as set through `PUT /admin/fault` and reported by `GET /admin/fault`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: FaultMode = FaultMode.NORMAL
    delay_ms: Annotated[int, Field(ge=0, le=600_000)] = 0

    @model_validator(mode="after")
    def _delay_only_when_slow(self) -> Self:
        if self.mode is FaultMode.SLOW:
            if self.delay_ms == 0:
                return self.model_copy(update={"delay_ms": 1000})
        elif self.delay_ms and self.mode is not FaultMode.FLAKY:
            raise ValueError("delay_ms applies only to modes 'slow' and 'flaky'")
        return self
