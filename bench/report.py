"""The results as one JSON-able dict, and the markdown tables rendered from it."""

from collections import Counter
from typing import Any

from bench.cores import ADDED, contender
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
    ("added_p99_us", "added p99 over direct, 1 connection (us)"),
    ("cpu_us_per_request", "CPU per request (us)"),
    ("errors", "client errors (non-2xx + socket)"),
)
ORDER = ALL_TARGETS
# The cores phase's added latencies (over `direct`, same round).
ADDED_KEYS = tuple(ADDED)
# The gateways ours is compared with, in the ratio columns.
OTHERS = tuple(n for n in GATEWAYS if n != "gateway")


def ratio(ours: float | None, theirs: float | None) -> float | None:
    # An added latency can come out below 0 on a busy machine: no ratio to draw from it.
    if ours is None or theirs is None or theirs <= 0 or ours < 0:
        return None
    return ours / theirs


def figures(results: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per target: the median figures plus the added p50 latency over direct."""
    table: dict[str, dict[str, float | None]] = {}
    for name, medians in results["medians"].items():
        row: dict[str, float | None] = dict(medians)
        row["added_p50_us"] = results["added_p50_us"].get(name)
        row["added_p99_us"] = results.get("added_p99_us", {}).get(name)
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


# The project's targets (issue 17): our gateway's cost relative to nginx's, in the same run;
# the latencies are at 1 connection, over `direct` in the same round.
TARGET_RATIOS = {
    "cpu_us_per_request": ("CPU per request", 2.0),
    "added_p50_us": ("added p50", 1.3),
    "added_p99_us": ("added p99", 1.5),
}
# The cores phase's own: our scaling from 1 to 2 workers against nginx's, and what sharing one
# rotation and health state across workers may cost per request.
SCALING_SHARE_OF_NGINX = 0.9
CPU_2_OVER_1 = 1.1


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def ratio_target_lines(
    ours: dict[str, float | None], nginx: dict[str, float | None], where: str = ""
) -> list[str]:
    """One line per ratio target: our figure over nginx's, against its limit."""
    lines = []
    for key, (label, limit) in TARGET_RATIOS.items():
        mine, theirs = ours.get(key), nginx.get(key)
        target = f"- {label} at most {limit:g}x nginx's{where}"
        if mine is None or theirs is None:
            # Added latency is measured against `direct`, which a run may leave out.
            lines.append(f"{target}: not measured in this run, not checked")
        elif mine < 0 or theirs <= 0:
            # On a busy machine `direct` can come out slower than a gateway: no ratio in that.
            lines.append(
                f"{target}: ours {_number(mine)} us, nginx's {_number(theirs)} us; not checked "
                "(an added latency at or below 0 is noise)"
            )
        else:
            value = mine / theirs
            lines.append(f"{target}: {_ratio(value)}, {verdict(value <= limit)}")
    return lines


def render_targets(results: dict[str, Any]) -> str:
    """The project's targets for our gateway, checked against this run (printed, never asserted)."""
    table = figures(results)
    if "gateway" not in table or "nginx" not in table:
        return "Targets: not checked (needs `gateway` and `nginx` in the run)."
    lines = [
        "Targets for our gateway (same run):",
        "",
        *ratio_target_lines(table["gateway"], table["nginx"]),
    ]
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


# The cores phase (bench/cores.py): per gateway and worker count.


def scaling(cores: dict[str, Any]) -> dict[str, dict[int, float | None]]:
    """Per gateway: requests/s at each count over requests/s at the smallest count."""
    table = cores["figures"]
    counts = cores["counts"]
    found: dict[str, dict[int, float | None]] = {}
    for name in cores["gateways"]:
        base = table.get(contender(name, counts[0]), {}).get("requests_per_s")
        found[name] = {
            count: ratio(table.get(contender(name, count), {}).get("requests_per_s"), base)
            for count in counts
        }
    return found


def ceiling(figures: dict[str, float], cpus: int, count: int, base: int) -> float | None:
    """The most scaling this machine lets a gateway show from `base` to `count` workers if its
    workers shared nothing: its `count` workers, wrk and the upstream share `cpus` CPUs, so
    requests/s <= cpus / (gateway + wrk + upstream CPU per request), against base / gateway's
    for `base` workers each with a CPU of its own."""
    own = figures.get("cpu_us_per_request") or 0.0
    rest = figures.get("wrk_cpu_us_per_request", 0.0) + figures.get(
        "upstream_cpu_us_per_request", 0.0
    )
    if own <= 0:
        return None
    return min(count / base, cpus * own / (base * (own + rest)))


def cores_rows(cores: dict[str, Any]) -> list[list[str]]:
    """One row per gateway and count (and `direct`): the figures of the phase."""
    table = cores["figures"]
    scaled = scaling(cores)
    rows = []
    order = [("direct", None)] + [(n, c) for n in cores["gateways"] for c in cores["counts"]]
    for name, count in order:
        key = "direct" if count is None else contender(name, count)
        if key not in table:
            continue
        f = table[key]
        used = f["cpu_us_per_request"] * f["requests_per_s"] / 1e6
        rows.append(
            [
                name,
                "-" if count is None else str(count),
                _number(f["requests_per_s"]),
                "-" if count is None else _ratio(scaled[name][count]),
                _number(f["cpu_us_per_request"]),
                f"{used:.2f}",
                *(_number(f.get(k)) for k in ADDED_KEYS),
                _count(f["errors"]),
            ]
        )
    return rows


def sharing_rows(cores: dict[str, Any]) -> list[list[str]]:
    """What else ran during each gateway's loaded runs, and the scaling the machine allows."""
    table = cores["figures"]
    counts = cores["counts"]
    rows = []
    for name in cores["gateways"]:
        for count in counts:
            f = table.get(contender(name, count))
            if f is None:
                continue
            rate = f["requests_per_s"] / 1e6
            busy = rate * (
                f["cpu_us_per_request"]
                + f["wrk_cpu_us_per_request"]
                + f["upstream_cpu_us_per_request"]
            )
            limit = ceiling(f, cores["cpus"], count, counts[0]) if count != counts[0] else None
            rows.append(
                [
                    name,
                    str(count),
                    _number(f["wrk_cpu_us_per_request"]),
                    _number(f["upstream_cpu_us_per_request"]),
                    f"{busy:.2f}",
                    f"{f['other_cpus']:.2f}",
                    _ratio(limit),
                ]
            )
    return rows


def memory_cell(processes: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p['role']} {_mib(p['rss'])}" for p in processes)


def cores_memory_rows(cores: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name in cores["gateways"]:
        for count in cores["counts"]:
            processes = cores["memory"].get(contender(name, count))
            if not processes:
                continue
            workers = [p["rss"] for p in processes if p["role"] == "worker"]
            rows.append(
                [
                    name,
                    str(count),
                    memory_cell(processes),
                    _mib(sum(workers) // len(workers)) if workers else "-",
                    _mib(sum(p["rss"] for p in processes)),
                    _mib(sum(p["pss"] for p in processes)),
                ]
            )
    return rows


def cores_versus_nginx(cores: dict[str, Any]) -> dict[int, dict[str, float | None]]:
    """Per count: our figures over nginx's with as many workers."""
    table = cores["figures"]
    found = {}
    for count in cores["counts"]:
        ours = table.get(contender("gateway", count))
        theirs = table.get(contender("nginx", count))
        if ours is None or theirs is None:
            continue
        found[count] = {
            key: ratio(ours.get(key), theirs.get(key))
            for key in ("requests_per_s", "cpu_us_per_request", *ADDED_KEYS)
        }
    return found


def render_cores_targets(cores: dict[str, Any]) -> str:
    table = cores["figures"]
    counts = cores["counts"]
    both = [
        c for c in counts if contender("gateway", c) in table and contender("nginx", c) in table
    ]
    if not both:
        return "Targets (cores phase): not checked (needs `gateway` and `nginx` in the phase)."
    lines = ["Targets for our gateway (cores phase, same run):", ""]
    if 1 in both and 2 in both:
        scaled = scaling(cores)
        ours, theirs = scaled["gateway"][2], scaled["nginx"][2]
        share = ratio(ours, theirs)
        text = f"- our scaling from 1 to 2 workers at least {SCALING_SHARE_OF_NGINX:.0%} of nginx's"
        if share is None:
            lines.append(f"{text}: not measured in this run, not checked")
        else:
            allowed = [
                _ratio(ceiling(table[contender(n, 2)], cores["cpus"], 2, 1))
                for n in ("gateway", "nginx")
            ]
            lines.append(
                f"{text}: {_ratio(ours)} against {_ratio(theirs)}, {share:.0%}, "
                f"{verdict(share >= SCALING_SHARE_OF_NGINX)} (this machine allows about "
                f"{allowed[0]} and {allowed[1]})"
            )
        cost = {
            n: ratio(
                table[contender(n, 2)]["cpu_us_per_request"],
                table[contender(n, 1)]["cpu_us_per_request"],
            )
            for n in ("gateway", "nginx")
        }
        text = f"- our CPU per request with 2 workers at most {CPU_2_OVER_1:g}x ours with 1"
        lines.append(
            f"{text}: not measured, not checked"
            if cost["gateway"] is None
            else f"{text}: {_ratio(cost['gateway'])}, {verdict(cost['gateway'] <= CPU_2_OVER_1)} "
            f"(nginx's: {_ratio(cost['nginx'])})"
        )
    else:
        lines.append("- scaling from 1 to 2 workers: not checked (--cores leaves out 1 or 2)")
    for count in both:
        lines += ratio_target_lines(
            table[contender("gateway", count)],
            table[contender("nginx", count)],
            f" ({count} worker{'s' if count > 1 else ''} each)",
        )
    return "\n".join(lines)


def render_cores(results: dict[str, Any]) -> str:
    cores = results.get("cores") or {}
    if not cores:
        return "(cores phase not run)"
    n = results["settings"]["connections"]
    loads = cores["load_cpus"]
    placed = "; ".join(
        f"{count} worker(s) on CPU {cpus or 'any'}, "
        + (
            f"wrk and the upstream on CPU {loads[count]}"
            if loads[count] and set(loads[count].split(",")).isdisjoint((cpus or "").split(","))
            else "wrk and the upstream on every CPU, shared with the workers"
        )
        for count, cpus in cores["gateway_cpus"].items()
    )
    other = cores.get("other_cpus") or {}
    noise = (
        f" Other work on the machine during the loaded runs: median {other['median']:.2f} CPUs, "
        f"at most {other['max']:.2f} (0 is a quiet machine)."
        if other
        else ""
    )
    skipped = "".join(
        f" `{name}` is left out: its description does not list WORKERS."
        for name in cores["skipped"]
    )
    intro = (
        f"Each gateway at {', '.join(map(str, cores['counts']))} worker(s) (ours `--workers`, "
        "nginx `worker_processes`, HAProxy `nbthread`, Caddy `GOMAXPROCS`), interleaved rounds. "
        f"Upstream: {cores['upstream']} (not the storage services, which cost more per request "
        f"than any gateway). {placed}; {cores['cpus']} CPUs in all.{noise}{skipped}"
    )
    header = [
        "gateway",
        "workers",
        f"requests/s ({n} connections)",
        f"scaling over {cores['counts'][0]}",
        "CPU per request (us)",
        "CPUs it used",
        "added p50, 1 connection (us)",
        "added p99, 1 connection (us)",
        f"added p50, {n} connections (us)",
        f"added p99, {n} connections (us)",
        "client errors",
    ]
    sharing_header = [
        "gateway",
        "workers",
        "wrk CPU per request (us)",
        "upstream CPU per request (us)",
        "CPUs: gateway + wrk + upstream",
        "CPUs: other work",
        "scaling this machine allows",
    ]
    versus_header = [
        "workers",
        "requests/s",
        "CPU per request",
        "added p50, 1 connection",
        "added p99, 1 connection",
        f"added p50, {n} connections",
        f"added p99, {n} connections",
    ]
    versus_rows = [
        [str(count), *(_ratio(v) for v in figures.values())]
        for count, figures in cores_versus_nginx(cores).items()
    ]
    memory_header = [
        "gateway",
        "workers",
        "RSS per process (MiB)",
        "RSS per worker (MiB)",
        "RSS, all (MiB)",
        "PSS, all (MiB)",
    ]
    return "\n\n".join(
        [
            intro,
            "\n".join(markdown_table(header, cores_rows(cores))),
            f"What shared the machine during each {n}-connection run (CPUs: CPU seconds per "
            "second), and the scaling it allows a gateway whose workers share nothing:",
            "\n".join(markdown_table(sharing_header, sharing_rows(cores))),
            "Ours over nginx with as many workers:",
            "\n".join(markdown_table(versus_header, versus_rows)),
            render_cores_targets(cores),
            "Memory per process after the phase's load (RSS counts pages a worker shares with "
            "the others in each of them; PSS divides them, so PSS adds up):",
            "\n".join(markdown_table(memory_header, cores_memory_rows(cores))),
        ]
    )


def render_markdown(results: dict[str, Any]) -> str:
    sections = [
        "## Gateway benchmark",
        render_settings(results),
        render_figures(results),
        render_targets(results),
        "### Cores: each gateway with more workers",
        render_cores(results),
        "### Failover under load",
        render_failover(results),
        "### Memory with large bodies",
        render_memory(results),
    ]
    return "\n\n".join(sections) + "\n"
