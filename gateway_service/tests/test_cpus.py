"""The default number of workers: the CPUs this process may use, bounded by a cgroup quota."""

import os
from pathlib import Path

import pytest

from gateway_service.cpus import available_cpus, cgroup_cpu_quota


def cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "50000 100000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3.0),
        ({}, None),
        ({"cpu.max": "garbage\n"}, None),
    ],
    ids=["v2 none", "v2 1.5", "v2 0.5", "v1 none", "v1 3", "no cgroup", "unreadable"],
)
def test_the_quota_is_read_from_cgroup_v2_or_v1(
    tmp_path: Path, files: dict[str, str], quota: float | None
) -> None:
    assert cgroup_cpu_quota(cgroup(tmp_path, files)) == quota


def test_a_quota_bounds_the_cpus_and_a_fraction_still_gets_a_worker(tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    assert available_cpus(cgroup(tmp_path / "none", {})) == cpus
    assert available_cpus(cgroup(tmp_path / "half", {"cpu.max": "50000 100000"})) == 1
    assert available_cpus(cgroup(tmp_path / "many", {"cpu.max": "6400000 100000"})) == cpus
