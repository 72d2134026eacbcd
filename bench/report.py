"""The results as one JSON-able dict, and the markdown tables rendered from it."""

from collections import Counter
from typing import Any

from bench.settings import ALL_TARGETS, GATEWAYS, MIB
from toolkit.tables import markdown_table

# (key in the medians, label, "higher is better")
ROWS: tuple[tuple[str, str], ...] = (
    ("requests_per_s", "requests/s ({n} connections)"),
    ("p50_us_n", "p50 latency, {n} connections (us)"),
    ("p99_us_n", "p99 latency, {n} connections (us)"),
    ("p50_us_1", "p50 latency, 1 connection (us)"),
    ("p99_us_1", "p99 latency, 1 connection (us)"),
    ("added_p50_us", "added p50 over direct, 1 connection (us)"),
    ("cpu_us_per_request", "CPU per request (us)"),
    ("errors", "client errors (non-2xx + socket)"),
)
ORDER = ALL_TARGETS
# The gateways ours is compared with, in the ratio columns.
OTHERS = tuple(n for n in GATEWAYS if n != "gateway")


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def figures(results: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per target: the median figures plus the added p50 latency over direct."""
    table: dict[str, dict[str, float | None]] = {}
    for name, medians in results["medians"].items():
        row: dict[str, float | None] = dict(medians)
        row["added_p50_us"] = results["added_p50_us"].get(name)
        table[name] = row
    return table


def ratios(results: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Our gateway's figure divided by each other gateway's in the run, for every figure."""
    table = figures(results)
    ours = table.get("gateway")
    if ours is None:
        return {}
    return {
        other: {key: ratio(ours.get(key), table[other].get(key)) for key, _ in ROWS}
        for other in OTHERS
        if other in table
    }


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def render_figures(results: dict[str, Any]) -> str:
    table = figures(results)
    names = [n for n in ORDER if n in table]
    versus = ratios(results)
    n = results["settings"]["connections"]
    header = ["figure (median of rounds)", *names, *(f"gateway / {o}" for o in versus)]
    rows = []
    for key, label in ROWS:
        show = _count if key == "errors" else _number
        cells = [label.format(n=n), *(show(table[name].get(key)) for name in names)]
        cells += [_ratio(versus[o][key]) for o in versus]
        rows.append(cells)
    return "\n".join(markdown_table(header, rows))


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} x {status}" for status, n in counts.items()) or "none"


def _socket_errors(drill: dict[str, Any]) -> str:
    kinds = drill.get("socket_errors_by_kind") or {}
    detail = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    return f"{drill['socket_errors_whole_run']}" + (f" ({detail})" if detail else "")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def render_failover(results: dict[str, Any]) -> str:
    drills = results.get("failover") or {}
    if not drills:
        return "(failover not run)"
    windows = [d["recovery"]["window_s"] for d in drills.values() if "recovery" in d]
    window = windows[0] if windows else results["settings"]["recovery_window_s"]
    header = [
        "gateway",
        "one killed: requests",
        "one killed: non-2xx",
        "one killed: socket errors",
        "all down: answers",
        f"first {window:g} s after recovery: errors",
        "answers",
        "first 2xx after",
        "last error after",
        "socket errors (outage run)",
    ]
    rows = []
    notes = []
    for name in (n for n in ORDER if n in drills):
        if "error" in drills[name]:
            rows.append([name, "drill failed", *["-"] * (len(header) - 2)])
            notes.append(f"- {name}: the drill failed: {drills[name]['error']}")
            continue
        k, r = drills[name]["kill_one"], drills[name]["recovery"]
        if not r["after_recovery"]:
            notes.append(
                f"- {name}: no answer at all in the {window:g} s after recovery; its clients' "
                "requests were still waiting when the window closed, so its 0 errors there is "
                "not a recovery."
            )
        cells = [
            name,
            f"{k['requests']:,}",
            str(k["non_2xx"]),
            str(k["socket_errors"]),
            _statuses(r["during_outage"]),
            f"{r['errors_after_recovery']:,}",
            _statuses(r["after_recovery"]),
            _seconds(r["first_2xx_after_s"]),
            _seconds(r["last_error_after_s"]),
            _socket_errors(r),
        ]
        rows.append(cells)
    table = "\n".join(markdown_table(header, rows))
    return table + ("\n\n" + "\n".join(notes) if notes else "")


def render_settings(results: dict[str, Any]) -> str:
    s, m = results["settings"], results["machine"]
    pin = f"servers on CPU {s['server_cpus'] or 'any'}, wrk on CPU {s['client_cpus'] or 'any'}"
    return "\n".join(
        [
            f"- run: {results['started_at']}{' (smoke: not a measurement)' if s['smoke'] else ''}",
            f"- load: wrk, {s['connections']} connections x {s['duration_s']} s "
            f"(+ {s['warmup_s']} s warm-up), 1 connection x {s['latency_duration_s']} s, "
            f"{s['rounds']} interleaved rounds, {s['wrk_threads']} wrk thread(s); {pin}",
            f"- {s['storage_count']} storage services, /data body ~{s['data_bytes']} bytes; "
            f"gateways' access logs to {s['access_log']}",
            f"- machine: {m['nproc']} CPUs, {m['cpu_model']}, Linux {m['kernel']}",
            f"- versions: {m['nginx']}; {m['haproxy']}; caddy {m.get('caddy', 'not recorded')}; "
            f"{m['wrk']}; python {m['python']}, "
            f"uvicorn {m['uvicorn']}, uvloop {m['uvloop']}, httptools {m['httptools']}, "
            f"fastapi {m['fastapi']}, httpx {m['httpx']}, aiohttp {m['aiohttp']}, "
            f"pyreqwest {m.get('pyreqwest', 'not recorded')}",
            "- CPU per request: utime+stime from /proc/PID/stat of the gateway's processes "
            "(nginx master+worker, the uvicorn process, HAProxy's and Caddy's one) / requests "
            "completed; "
            "for `direct`, the storage service's own.",
        ]
    )


# The project's targets: our gateway's cost relative to nginx's, in the same run.
TARGET_RATIOS = {"cpu_us_per_request": 2.5, "added_p50_us": 1.5}


def render_targets(results: dict[str, Any]) -> str:
    """The project's targets for our gateway, checked against this run (printed, never asserted)."""
    versus = ratios(results).get("nginx")
    if versus is None:
        return "Targets: not checked (needs `gateway` and `nginx` in the run)."

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = ["Targets for our gateway (same run):", ""]
    for key, label in (("cpu_us_per_request", "CPU per request"), ("added_p50_us", "added p50")):
        value = versus[key]
        limit = TARGET_RATIOS[key]
        target = f"- {label} at most {limit:g}x nginx's"
        if value is None:
            # Added latency is measured against `direct`, which a run may leave out.
            lines.append(f"{target}: not measured in this run, not checked")
            continue
        lines.append(f"{target}: {_ratio(value)}, {verdict(value <= limit)}")
    drill = (results.get("failover") or {}).get("gateway")
    if drill is not None and "error" in drill:
        lines.append("- no client error when one storage service is killed: drill failed, NOT met")
    elif drill is not None:
        errors = drill["kill_one"]["non_2xx"] + drill["kill_one"]["socket_errors"]
        lines.append(
            f"- no client error when one storage service is killed under load: {errors}, "
            f"{verdict(errors == 0)}"
        )
    return "\n".join(lines)


def _mib(value: int) -> str:
    return f"{value / MIB:,.1f}"


def _received(results: list[dict[str, Any]]) -> str:
    counts = Counter(r["bytes"] for r in results)
    return ", ".join(f"{n} x {size:,}" for size, n in sorted(counts.items(), reverse=True))


def _answers(results: list[dict[str, Any]]) -> str:
    counts = Counter("no answer" if r["status"] is None else str(r["status"]) for r in results)
    return ", ".join(f"{n} x {status}" for status, n in sorted(counts.items()))


def _errors(results: list[dict[str, Any]]) -> str:
    errors = Counter(r["error"] for r in results if r["error"])
    return "; ".join(f"{n} x {error}" for error, n in errors.items()) or "none"


def memory_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per gateway: RSS before, peak, growth and after (MiB), then what clients got."""
    rows = []
    runs = results.get("memory") or {}
    for name in (n for n in ORDER if n in runs):
        run = runs[name]
        rows.append(
            [
                name,
                _mib(run["baseline_rss"]),
                _mib(run["peak_rss"]),
                _mib(run["peak_rss"] - run["baseline_rss"]),
                _mib(run["after_rss"]),
                _mib(run["hwm_after"]),
                f"{run['complete']}/{run['clients']}",
                _received(run["results"]),
                _answers(run["results"]),
                _errors(run["results"]),
            ]
        )
    return rows


def render_memory(results: dict[str, Any]) -> str:
    runs = results.get("memory") or {}
    if not runs:
        return "(memory phase not run)"
    first = next(iter(runs.values()))
    intro = (
        f"{first['clients']} clients fetch a {first['body_bytes']:,}-byte body "
        f"({first['body_bytes'] / MIB:g} MiB) at once through a second instance of each gateway "
        "(upstream: bench/bigbody.py). RSS in MiB: VmRSS summed over the gateway's processes, "
        f'sampled every 50 ms; "after" is read {first["after_s"]:g} s after the last client '
        "finished; VmHWM is the kernel's peak RSS of each process since it started, summed (it "
        "catches a peak between two samples)."
    )
    header = [
        "gateway",
        "RSS before",
        "peak RSS",
        "peak - before",
        f"RSS {first['after_s']:g} s after",
        "VmHWM after",
        "full bodies",
        "bytes received (clients x bytes)",
        "answers",
        "client errors",
    ]
    text = intro + "\n\n" + "\n".join(markdown_table(header, memory_rows(results)))
    nginx = runs.get("nginx")
    if nginx is not None:
        warnings = nginx.get("temp_file_warnings")
        said = "not read (log to devnull)" if warnings is None else f"{warnings:,} time(s)"
        text += (
            '\n\nnginx\'s error log said "an upstream response is buffered to a temporary file" '
            f"{said}: past its memory buffers nginx spools a response to disk "
            "(proxy_max_temp_file_size), which its RSS does not show."
        )
    return text


def render_markdown(results: dict[str, Any]) -> str:
    sections = [
        "## Gateway benchmark",
        render_settings(results),
        render_figures(results),
        render_targets(results),
        "### Failover under load",
        render_failover(results),
        "### Memory with large bodies",
        render_memory(results),
    ]
    return "\n\n".join(sections) + "\n"
