"""How many CPUs this process may use: the default number of workers (`WORKERS`).

The CPUs it may run on (`sched_getaffinity`: `taskset`, `docker run --cpuset-cpus`), bounded by
the cgroup's CPU quota where one is set (`docker run --cpus`, a Kubernetes CPU limit): a
container limited to 1.5 CPUs of a 64-core host gets 2 workers, not 64. A quota is rounded up,
so a fractional CPU still gets a worker.
"""

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The cgroup's CPU limit in CPUs, or None when there is none (or no cgroup to read)."""
    try:
        # cgroup v2: "max 100000" (no limit) or "150000 100000" (quota, period in us).
        quota, period = (root / "cpu.max").read_text().split()
        if quota == "max":
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        # cgroup v1: a quota of -1 means none.
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    if quota_us <= 0 or period_us <= 0:
        return None
    return quota_us / period_us


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may use, at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)
