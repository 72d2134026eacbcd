"""PNG charts of a comparison: each scenario over time (failure window shaded), and the share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display here or in CI

import matplotlib.pyplot as plt

from loadcompare.plan import Scenario
from loadcompare.results import Results, Runs
from loadcompare.summary import SCENARIO_TITLES

COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red"]


def timeline_chart(scenario: Scenario, runs: Runs, path: Path) -> bool:
    """Throughput, failures and latency per second for each gateway; False when nothing to draw."""
    drawn = {g: r for g, r in runs.items() if r and r.timeline}
    if not drawn:
        return False
    targets = {g: r.target_instance for g, r in drawn.items() if r.target_instance}
    rows = 3 if targets else 2
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.6 + 2.2 * rows), sharex=True)
    top, bottom = axes[0], axes[-1]
    for (gateway, result), colour in zip(drawn.items(), COLOURS, strict=False):
        # The last second is cut short by the end of the run; drawn, it looks like a collapse.
        buckets = [b for b in result.timeline if b.t + 1 <= result.duration_s]
        t = [b.t for b in buckets]
        top.plot(t, [b.requests for b in buckets], color=colour, label=f"{gateway} requests/s")
        top.plot(
            t,
            [b.failures for b in buckets],
            color=colour,
            linestyle="--",
            label=f"{gateway} failures/s",
        )
        bottom.plot(t, [b.p50_ms for b in buckets], color=colour, label=f"{gateway} p50")
        bottom.plot(
            t, [b.p95_ms for b in buckets], color=colour, linestyle=":", label=f"{gateway} p95"
        )
        if gateway in targets:
            served = [b.by_instance.get(targets[gateway], 0) for b in buckets]
            axes[1].plot(
                t, served, color=colour, label=f"{gateway}: answered by {targets[gateway]}"
            )
        fault, recovered = result.fault_t, result.recover_t
        if fault is not None and recovered is not None:
            for axis in axes:
                axis.axvspan(fault, recovered, color=colour, alpha=0.12)
    if targets:
        axes[1].set_ylabel("per second")
        axes[1].legend(loc="lower left", fontsize="small")
    top.set_ylabel("per second")
    top.legend(loc="lower left", fontsize="small", ncols=2)
    bottom.set_ylabel("latency (ms)")
    bottom.set_yscale("log")
    bottom.set_xlabel("seconds since start (shaded: storage service(s) down)")
    bottom.legend(loc="upper left", fontsize="small", ncols=2)
    fig.suptitle(SCENARIO_TITLES[scenario], fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def share_chart(results: Results, gateways: Sequence[str], path: Path) -> bool:
    """Share of successful steady responses per storage instance, one bar per gateway."""
    runs = results.get(Scenario.STEADY, {})
    shares = {g: r.share for g in gateways if (r := runs.get(g)) and r.share}
    if not shares:
        return False
    instances = sorted({i for s in shares.values() for i in s})
    width = 0.8 / len(shares)
    fig, axis = plt.subplots(figsize=(7, 4))
    for index, ((gateway, counts), colour) in enumerate(zip(shares.items(), COLOURS, strict=False)):
        total = sum(counts.values())
        xs = [i + index * width for i in range(len(instances))]
        axis.bar(
            xs,
            [100.0 * counts.get(i, 0) / total for i in instances],
            width,
            color=colour,
            label=gateway,
        )
    axis.axhline(100.0 / len(instances), color="grey", linestyle="--", label="even share")
    axis.set_xticks([i + width * (len(shares) - 1) / 2 for i in range(len(instances))], instances)
    axis.set_ylabel("% of successful responses")
    axis.set_title("Steady load: share per storage instance", fontsize="medium")
    axis.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
