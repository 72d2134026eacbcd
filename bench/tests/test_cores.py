"""The cores phase's pure parts: where each process runs, what each process of a gateway is and
holds (fake /proc), and the figures summarised from samples."""

import json
from pathlib import Path

from bench.cores import cpu_list, gateway_cpus, load_cpus, process_memory, summarise
from bench.measure import Sample
from bench.tests.test_procstat import fake_proc


class TestPlacement:
    def test_on_two_cores_one_worker_leaves_a_core_to_the_load_and_two_share_both(self) -> None:
        allowed = [0, 1]
        assert [gateway_cpus(n, allowed) for n in (1, 2)] == ["0", "0,1"]
        assert [load_cpus(n, allowed) for n in (1, 2)] == [[1], [0, 1]]

    def test_on_a_larger_machine_the_load_gets_the_cores_the_gateway_leaves(self) -> None:
        allowed = list(range(8))
        assert [gateway_cpus(n, allowed) for n in (1, 2, 4)] == ["0", "0,1", "0,1,2,3"]
        assert load_cpus(4, allowed) == [4, 5, 6, 7]

    def test_the_cpus_are_the_ones_the_bench_may_use_not_the_first_of_the_host(self) -> None:
        allowed = [7, 5, 6, 4]
        assert gateway_cpus(2, allowed) == "4,5"
        assert cpu_list(load_cpus(2, allowed)) == "6,7"

    def test_more_workers_than_cpus_run_on_every_cpu_with_the_load(self) -> None:
        assert gateway_cpus(4, [0, 1]) == "0,1"
        assert load_cpus(4, [0, 1]) == [0, 1]

    def test_nothing_is_pinned_when_pinning_is_off(self) -> None:
        assert gateway_cpus(2, []) is None
        assert cpu_list(load_cpus(1, [])) is None


def with_memory(proc: Path, rss_kb: dict[int, int], pss_kb: dict[int, int]) -> Path:
    for pid, kb in rss_kb.items():
        (proc / str(pid) / "status").write_text(f"Name:\tx\nVmRSS:\t{kb} kB\n")
    for pid, kb in pss_kb.items():
        (proc / str(pid) / "smaps_rollup").write_text(f"Rss:\t{kb * 2} kB\nPss:\t{kb} kB\n")
    return proc


def served(log: Path, workers: dict[int, int]) -> Path:
    log.write_text(
        "".join(
            json.dumps({"event": "worker_serving", "worker": w, "pid": pid}) + "\n"
            for w, pid in workers.items()
        )
    )
    return log


class TestProcessMemory:
    def test_our_processes_are_the_supervisor_its_workers_and_the_control_process(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "proc").mkdir()
        proc = fake_proc(
            tmp_path / "proc",
            {10: ("python", 1, 0, 0), 11: ("python", 10, 0, 0), 12: ("python", 10, 0, 0),
             13: ("python", 10, 0, 0), 20: ("other", 1, 0, 0)},
        )  # fmt: skip
        with_memory(proc, {10: 30_000, 11: 40_000, 12: 50_000, 13: 52_000}, {10: 10_000})
        log = served(tmp_path / "gateway.log", {0: 12, 1: 13})
        rows = process_memory("gateway", 10, log, proc)
        assert [(r["role"], r["pid"]) for r in rows] == [
            ("supervisor", 10), ("control", 11), ("worker", 12), ("worker", 13)
        ]  # fmt: skip
        assert rows[2]["rss"] == 50_000 * 1024
        assert (rows[0]["pss"], rows[1]["pss"]) == (10_000 * 1024, 0)

    def test_without_our_log_a_child_is_not_guessed_to_be_a_worker(self, tmp_path: Path) -> None:
        proc = fake_proc(tmp_path, {10: ("python", 1, 0, 0), 11: ("python", 10, 0, 0)})
        rows = process_memory("gateway", 10, None, proc)
        assert [r["role"] for r in rows] == ["supervisor", "worker or control"]

    def test_nginx_is_a_master_and_its_workers_and_haproxy_one_process(
        self, tmp_path: Path
    ) -> None:
        proc = fake_proc(
            tmp_path,
            {10: ("nginx", 1, 0, 0), 11: ("nginx", 10, 0, 0), 12: ("nginx", 10, 0, 0),
             30: ("haproxy", 1, 0, 0)},
        )  # fmt: skip
        assert [r["role"] for r in process_memory("nginx", 10, None, proc)] == [
            "master", "worker", "worker"
        ]  # fmt: skip
        assert [r["role"] for r in process_memory("haproxy", 30, None, proc)] == ["process"]


def sample(p50_1: float, p99_1: float, p50_n: float, p99_n: float, rps: float = 1000) -> Sample:
    return Sample(
        requests_per_s=rps,
        p50_us_n=p50_n,
        p99_us_n=p99_n,
        cpu_us_per_request=30.0,
        p50_us_1=p50_1,
        p99_us_1=p99_1,
        errors=0,
    )


def test_each_latency_is_reported_over_direct_in_the_same_round() -> None:
    table = summarise(
        {
            "direct": [sample(50, 100, 500, 900), sample(80, 300, 600, 1000)],
            "nginx x2": [sample(90, 200, 700, 1500), sample(130, 320, 900, 1200)],
        }
    )
    assert table["nginx x2"]["added_p50_us"] == 45  # median of 40 and 50
    assert table["nginx x2"]["added_p99_us"] == 60  # of 100 and 20
    assert table["nginx x2"]["added_p50_us_n"] == 250
    assert table["nginx x2"]["added_p99_us_n"] == 400
    assert "added_p50_us" not in table["direct"]
