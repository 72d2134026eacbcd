"""A gateway as the kernel sees it: the resident memory of its whole process tree, and the
client connections that tree holds open.

The whole tree, because a gateway may be a supervisor with worker processes (nginx's master and
worker; ours once it has workers): memory and connections are summed over the root and every
descendant, and the tree is walked again at each reading, so a worker that was replaced counts.
The /proc parsing is bench/procstat.py's; this is only what the client-side cases read with it.
"""

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from bench.procstat import descendants, rss_bytes, tcp_peers

KIB = 1024
MIB = 1024 * 1024
SAMPLE_S = 0.05


def mib(n: float) -> str:
    return f"{n / MIB:+.1f} MiB"


@dataclass(frozen=True)
class ProcessTree:
    root: int

    def pids(self) -> list[int]:
        return [self.root, *descendants(self.root)]

    def rss(self) -> int:
        """The summed VmRSS of the tree, in bytes."""
        return rss_bytes(self.pids())

    def peers(self, port: int) -> set[int]:
        """The client ports of the connections to `port` that a process of the tree holds."""
        return tcp_peers(self.pids(), port)

    def settled_rss(self, ceiling: int, timeout_s: float) -> int:
        """Wait (up to `timeout_s`) until the tree's RSS is at most `ceiling`; the last reading.

        Memory a process gives back after its clients left shows up over a moment (an allocator
        trims its heap when it next frees), so "it returns" is a wait, not one reading.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            current = self.rss()
            if current <= ceiling or time.monotonic() >= deadline:
                return current
            time.sleep(SAMPLE_S)

    def steady_peers(self, port: int, clients: set[int], timeout_s: float) -> set[int]:
        """Which of `clients` the tree holds, once that stops changing (three equal readings in a
        row; a gateway accepts a burst of connections over a moment), or when `timeout_s` ends."""
        deadline = time.monotonic() + timeout_s
        last: set[int] = set()
        same = 0
        while time.monotonic() < deadline:
            held = self.peers(port) & clients
            same = same + 1 if held == last else 0
            last = held
            if same >= 2:
                break
            time.sleep(0.2)
        return last


@dataclass
class RssWatch:
    """The tree's RSS sampled while a load runs, against the reading before it (`baseline`).

    `over` is set once the growth passes `ceiling`: far past any bound a case asserts, so the
    load can stop there: an unbounded gateway is proven, and the machine keeps its memory.
    """

    tree: ProcessTree
    baseline: int
    ceiling: int
    peak: int = 0
    over: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.peak = self.baseline

    @property
    def growth(self) -> int:
        return self.peak - self.baseline

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak = max(self.peak, self.tree.rss())
            if self.growth > self.ceiling:
                self.over.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_S)
