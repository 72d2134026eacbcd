"""The memory phase's pure parts: RSS of a process tree from a fake /proc, the clients' results."""

from pathlib import Path

from bench.bigbody import _is_probe
from bench.memory import (
    NGINX_TEMP_FILE,
    TREE_RESCAN_S,
    ClientResult,
    MemoryRun,
    RssSampler,
    client_results,
    count_in_log,
)
from bench.settings import MIB, BenchSettings, smoke_settings

from .test_procstat import stat_line, status_text


def add_process(proc: Path, pid: int, ppid: int, rss_kb: int) -> None:
    (proc / str(pid)).mkdir()
    (proc / str(pid) / "stat").write_text(stat_line(pid, "nginx", ppid, 0, 0))
    (proc / str(pid) / "status").write_text(status_text("nginx", rss_kb))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestRssSampler:
    def test_sums_the_root_and_its_descendants_only(self, tmp_path: Path) -> None:
        add_process(tmp_path, 10, 1, 2_000)  # nginx master
        add_process(tmp_path, 11, 10, 30_000)  # its worker
        add_process(tmp_path, 20, 1, 999_000)  # somebody else's process
        assert RssSampler(10, tmp_path).sample() == 32_000 * 1024

    def test_a_process_started_later_is_seen_after_the_next_tree_walk(self, tmp_path: Path) -> None:
        clock = FakeClock()
        add_process(tmp_path, 10, 1, 2_000)
        sampler = RssSampler(10, tmp_path, clock)
        assert sampler.sample() == 2_000 * 1024
        add_process(tmp_path, 12, 10, 4_000)
        assert sampler.sample() == 2_000 * 1024  # the tree is walked again only now and then
        clock.now += TREE_RESCAN_S
        assert sampler.sample() == 6_000 * 1024
        assert sampler.count == 3

    def test_the_high_water_mark_is_summed_over_the_tree(self, tmp_path: Path) -> None:
        add_process(tmp_path, 10, 1, 2_000)  # status_text gives VmHWM = 2 x VmRSS
        add_process(tmp_path, 11, 10, 3_000)
        assert RssSampler(10, tmp_path).high_water_mark() == 10_000 * 1024


def client(status: int | None = 200, size: int = 100, error: str | None = None) -> ClientResult:
    return ClientResult(status=status, content_length=100, bytes=size, seconds=1.0, error=error)


class TestClients:
    def test_a_full_body_is_a_200_with_every_byte_and_no_error(self) -> None:
        assert client().complete(100)
        assert not client(size=99).complete(100)
        assert not client(status=503, size=100).complete(100)
        assert not client(error="deadline reached").complete(100)

    def test_the_run_counts_full_bodies(self) -> None:
        run = MemoryRun(
            clients=3, body_bytes=100, baseline_rss=1, peak_rss=3, after_rss=2, hwm_before=2,
            hwm_after=4, after_s=2.0,
            fetch_s=1.0, samples=10, results=[client(), client(size=50), client()],
        )  # fmt: skip
        assert run.complete == 2
        assert run.as_dict()["complete"] == 2

    def test_results_are_read_from_the_fetch_clients_json(self) -> None:
        raw = [{"status": None, "content_length": None, "bytes": 0, "seconds": 0.2,
                "error": "ConnectionRefusedError: [Errno 111] Connection refused"}]  # fmt: skip
        (result,) = client_results(raw)
        assert result.status is None
        assert result.bytes == 0
        assert "refused" in str(result.error)


def test_smoke_keeps_the_memory_phase_but_small() -> None:
    full, smoke = BenchSettings(), smoke_settings(BenchSettings())
    assert (full.memory, full.memory_clients, full.memory_body_bytes) == (True, 5, 100 * MIB)
    assert smoke.memory
    assert smoke.memory_clients == 2
    assert smoke.memory_body_bytes == 20 * MIB


def test_health_checks_and_the_readiness_probe_get_a_small_body() -> None:
    assert _is_probe("/health")
    assert _is_probe("/data?probe=1")
    assert not _is_probe("/data")
    assert not _is_probe("/data?x=1")


def test_nginx_warnings_are_counted_in_its_log(tmp_path: Path) -> None:
    log = tmp_path / "nginx.log"
    log.write_text(
        "2026/11/25 17:00:00 [warn] 7#7: *1 an upstream response is buffered to a temporary file "
        "proxy_temp/1/00/0000000001 while reading upstream\n"
        "2026/11/25 17:00:01 [warn] 7#7: *2 something else\n"
    )
    assert count_in_log(log, NGINX_TEMP_FILE) == 1
    assert count_in_log(None, NGINX_TEMP_FILE) is None
