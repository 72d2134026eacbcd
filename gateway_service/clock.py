"""Time sources, injected so tests can drive health transitions without sleeping."""

from collections.abc import Callable

Clock = Callable[[], float]
