"""CPU time (/proc/PID/stat), resident memory (/proc/PID/status) and the TCP connections
(/proc/PID/fd, /proc/net/tcp) of a process tree (Linux)."""

import os
from pathlib import Path

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _fields_after_comm(stat_text: str) -> list[str]:
    # The command name (field 2) may contain spaces and parentheses; it ends at the last ')'.
    end = stat_text.rfind(")")
    if end < 0:
        raise ValueError("not a /proc/PID/stat line: no ')' after the command name")
    return stat_text[end + 1 :].split()


def parse_cpu_ticks(stat_text: str) -> int:
    """utime + stime (fields 14 and 15 of proc(5)), in clock ticks."""
    fields = _fields_after_comm(stat_text)
    # fields[0] is field 3 (state), so field N is fields[N - 3].
    return int(fields[14 - 3]) + int(fields[15 - 3])


def parse_ppid(stat_text: str) -> int:
    """The parent pid (field 4 of proc(5))."""
    return int(_fields_after_comm(stat_text)[4 - 3])


def _read_stat(pid: int, proc: Path) -> str | None:
    try:
        return (proc / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None


def descendants(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """Every live process below `pid` (an nginx master's worker, for example)."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        text = _read_stat(int(entry.name), proc)
        if text is not None:
            children.setdefault(parse_ppid(text), []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def cpu_seconds(pids: list[int], proc: Path = Path("/proc")) -> float:
    """User + system CPU seconds of these processes; a process that is gone counts 0."""
    ticks = 0
    for pid in pids:
        text = _read_stat(pid, proc)
        if text is not None:
            ticks += parse_cpu_ticks(text)
    return ticks / CLOCK_TICKS_PER_SECOND


def parse_busy_ticks(stat_text: str) -> int:
    """Ticks all CPUs spent busy, from /proc/stat's `cpu` line: everything but idle and iowait
    (guest time is already inside user and nice)."""
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
            return user + nice + system + irq + softirq + steal
    raise ValueError("no `cpu` line in /proc/stat")


def machine_busy_seconds(proc: Path = Path("/proc")) -> float:
    """CPU seconds the whole machine has spent busy since boot, over all CPUs."""
    return parse_busy_ticks((proc / "stat").read_text()) / CLOCK_TICKS_PER_SECOND


def parse_status_bytes(status_text: str, field: str) -> int | None:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM, ...) in bytes; None if it is absent."""
    prefix = f"{field}:"
    for line in status_text.splitlines():
        if line.startswith(prefix):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"unexpected {field} unit {unit!r}")
            return int(value) * 1024
    # Kernel threads and zombies have no Vm* lines.
    return None


def parse_vm_rss(status_text: str) -> int | None:
    """Resident set size in bytes (`VmRSS:`)."""
    return parse_status_bytes(status_text, "VmRSS")


def status_bytes(
    pids: list[int], field: str, proc: Path = Path("/proc"), source: str = "status"
) -> int:
    """The sum of a `kB` field of /proc/PID/<source> over these processes (`status`, or
    `smaps_rollup` for Pss); a process that is gone, or that may not be read, counts 0."""
    total = 0
    for pid in pids:
        try:
            text = (proc / str(pid) / source).read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        total += parse_status_bytes(text, field) or 0
    return total


def rss_bytes(pids: list[int], proc: Path = Path("/proc")) -> int:
    """The sum of these processes' resident set sizes."""
    return status_bytes(pids, "VmRSS", proc)


def socket_inodes(pids: list[int], proc: Path = Path("/proc")) -> set[int]:
    """The inodes of the sockets these processes hold open; a process that is gone holds none."""
    inodes: set[int] = set()
    for pid in pids:
        try:
            descriptors = list((proc / str(pid) / "fd").iterdir())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(descriptor)
            except OSError:
                continue  # closed between the listing and the readlink
            if target.startswith("socket:[") and target.endswith("]"):
                inodes.add(int(target[len("socket:[") : -1]))
    return inodes


TCP_LISTEN = 0x0A
"""The `st` column of /proc/net/tcp for a listening socket (include/net/tcp_states.h)."""


def parse_tcp_table(text: str) -> list[tuple[int, int, int, int]]:
    """(local port, remote port, state, inode) of each socket in a /proc/net/tcp table."""
    rows: list[tuple[int, int, int, int]] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        rows.append((local_port, remote_port, int(fields[3], 16), int(fields[9])))
    return rows


def tcp_peers(pids: list[int], local_port: int, proc: Path = Path("/proc")) -> set[int]:
    """The remote ports of the TCP connections to `local_port` (IPv4) that these processes hold.

    A connection the process closed is not counted even while the kernel still delivers its last
    bytes (an orphaned socket has no descriptor), so this is what the process itself holds.
    """
    inodes = socket_inodes(pids, proc)
    table = parse_tcp_table((proc / "net" / "tcp").read_text())
    return {
        remote
        for local, remote, state, inode in table
        if local == local_port and state != TCP_LISTEN and inode in inodes
    }
