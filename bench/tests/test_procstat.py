"""CPU time and process trees from /proc, read from a fake /proc tree."""

from pathlib import Path

import pytest

from bench.procstat import (
    CLOCK_TICKS_PER_SECOND,
    TCP_LISTEN,
    cpu_seconds,
    descendants,
    parse_busy_ticks,
    parse_cpu_ticks,
    parse_ppid,
    parse_tcp_table,
    parse_vm_rss,
    rss_bytes,
    socket_inodes,
    tcp_peers,
)


def stat_line(pid: int, comm: str, ppid: int, utime: int, stime: int) -> str:
    # Fields 1..17 of proc(5); the rest do not matter here.
    return f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 {utime} {stime} 3 4 20\n"


def fake_proc(tmp_path: Path, processes: dict[int, tuple[str, int, int, int]]) -> Path:
    for pid, (comm, ppid, utime, stime) in processes.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(stat_line(pid, comm, ppid, utime, stime))
    (tmp_path / "self").mkdir()  # non-numeric entries are skipped
    return tmp_path


class TestParsing:
    def test_cpu_ticks_are_user_plus_system(self) -> None:
        assert parse_cpu_ticks(stat_line(42, "nginx", 1, 150, 70)) == 220

    def test_a_command_name_with_spaces_and_parentheses_does_not_shift_fields(self) -> None:
        line = stat_line(42, "nginx: worker (x) y", 7, 5, 6)
        assert parse_cpu_ticks(line) == 11
        assert parse_ppid(line) == 7

    def test_a_line_that_is_not_a_stat_line_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not a /proc/PID/stat line"):
            parse_cpu_ticks("garbage")


class TestProcessTree:
    def test_descendants_include_grandchildren_but_not_siblings(self, tmp_path: Path) -> None:
        proc = fake_proc(
            tmp_path,
            {
                10: ("nginx", 1, 0, 0),
                11: ("nginx", 10, 0, 0),
                12: ("helper", 11, 0, 0),
                20: ("other", 1, 0, 0),
            },
        )
        assert sorted(descendants(10, proc)) == [11, 12]

    def test_cpu_seconds_sums_processes_and_counts_a_vanished_one_as_zero(
        self, tmp_path: Path
    ) -> None:
        proc = fake_proc(tmp_path, {10: ("nginx", 1, 100, 50), 11: ("nginx", 10, 30, 20)})
        expected = (150 + 50) / CLOCK_TICKS_PER_SECOND
        assert cpu_seconds([10, 11, 99], proc) == pytest.approx(expected)


def status_text(name: str, rss_kb: int | None) -> str:
    # An excerpt of /proc/PID/status (proc(5)); kernel threads have no VmRSS line.
    lines = [f"Name:\t{name}", "State:\tS (sleeping)", "VmPeak:\t  999999 kB"]
    if rss_kb is not None:
        lines += [f"VmHWM:\t  {rss_kb * 2} kB", f"VmRSS:\t  {rss_kb} kB", "RssAnon:\t    100 kB"]
    return "\n".join(lines) + "\n"


class TestRss:
    def test_vm_rss_is_read_in_bytes(self) -> None:
        assert parse_vm_rss(status_text("nginx", 12_345)) == 12_345 * 1024

    def test_other_rss_lines_are_not_taken_for_it(self) -> None:
        # VmHWM (the high-water mark) and RssAnon come before/after it and must be ignored.
        assert parse_vm_rss(status_text("python", 2_000)) == 2_000 * 1024

    def test_a_process_without_vm_rss_has_none(self) -> None:
        assert parse_vm_rss(status_text("kthreadd", None)) is None

    def test_rss_is_summed_over_processes_and_a_vanished_one_counts_zero(
        self, tmp_path: Path
    ) -> None:
        proc = fake_proc(tmp_path, {10: ("nginx", 1, 0, 0), 11: ("nginx", 10, 0, 0)})
        (proc / "10" / "status").write_text(status_text("nginx", 3_000))
        (proc / "11" / "status").write_text(status_text("nginx", 5_000))
        assert rss_bytes([10, 11, 99], proc) == 8_000 * 1024


TCP_TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1
   1: 0100007F:1F90 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 101 1
   2: 0100007F:1F90 0100007F:A001 08 00000000:00000000 00:00000000 00000000     0        0 102 1
   3: 0100007F:A000 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 200 1
   4: 0100007F:1F90 0100007F:A002 04 00000000:00000000 00:00000000 00000000     0        0 0 1
   5: 0100007F:1F91 0100007F:A003 01 00000000:00000000 00:00000000 00000000     0        0 103 1
"""


class TestSockets:
    def test_the_tcp_table_gives_ports_state_and_inode(self) -> None:
        rows = parse_tcp_table(TCP_TABLE)
        assert rows[0] == (0x1F90, 0, TCP_LISTEN, 100)
        assert rows[2] == (0x1F90, 0xA001, 0x08, 102)
        assert len(rows) == 6

    def test_peers_are_the_connections_to_the_port_that_the_processes_hold(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "net").mkdir()
        (tmp_path / "net" / "tcp").write_text(TCP_TABLE)
        fds = tmp_path / "10" / "fd"
        fds.mkdir(parents=True)
        for number, target in enumerate(["/dev/null", *(f"socket:[{i}]" for i in (100, 101, 102))]):
            (fds / str(number)).symlink_to(target)
        (tmp_path / "11" / "fd").mkdir(parents=True)
        (tmp_path / "11" / "fd" / "0").symlink_to("socket:[103]")
        # Not the listener (100), not a connection the process closed (inode 0), not the client's
        # side (200, another process), not another port (103).
        assert tcp_peers([10, 11, 99], 0x1F90, tmp_path) == {0xA000, 0xA001}
        assert socket_inodes([10, 11], tmp_path) == {100, 101, 102, 103}


def test_the_machine_is_busy_for_all_but_its_idle_and_iowait_ticks() -> None:
    text = "cpu  100 5 40 9000 30 2 3 1 7 0\ncpu0 50 2 20 4500 15 1 1 0 3 0\nintr 1\n"
    # user + nice + system + irq + softirq + steal; guest (7) is already inside user.
    assert parse_busy_ticks(text) == 100 + 5 + 40 + 2 + 3 + 1


def test_proc_stat_without_a_cpu_line_is_refused() -> None:
    with pytest.raises(ValueError, match="no `cpu` line"):
        parse_busy_ticks("intr 1\n")
