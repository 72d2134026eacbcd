"""The markdown the bench prints and saves, rendered from a results dict."""

from typing import Any

from bench.report import (
    memory_rows,
    ratios,
    render_cores,
    render_cores_targets,
    render_failover,
    render_figures,
    render_markdown,
    render_memory,
    render_targets,
    sharing_rows,
)
from bench.settings import MIB


def sample_results(with_gateway: bool = True) -> dict[str, Any]:
    medians = {
        "direct": {"requests_per_s": 8000.0, "p50_us_n": 900.0, "p99_us_n": 2000.0,
                   "cpu_us_per_request": 110.0, "p50_us_1": 150.0, "p99_us_1": 300.0, "errors": 0},
        "nginx": {"requests_per_s": 4000.0, "p50_us_n": 1800.0, "p99_us_n": 3600.0,
                  "cpu_us_per_request": 28.0, "p50_us_1": 230.0, "p99_us_1": 700.0, "errors": 0},
        "haproxy": {"requests_per_s": 4200.0, "p50_us_n": 1700.0, "p99_us_n": 3000.0,
                    "cpu_us_per_request": 26.0, "p50_us_1": 245.0, "p99_us_1": 800.0, "errors": 0},
        "caddy": {"requests_per_s": 2500.0, "p50_us_n": 2900.0, "p99_us_n": 6000.0,
                  "cpu_us_per_request": 210.0, "p50_us_1": 640.0, "p99_us_1": 2400.0, "errors": 0},
    }  # fmt: skip
    added = {"nginx": 80.0, "haproxy": 95.0, "caddy": 490.0}
    if with_gateway:
        medians["gateway"] = {"requests_per_s": 3000.0, "p50_us_n": 2400.0, "p99_us_n": 4000.0,
                              "cpu_us_per_request": 84.0, "p50_us_1": 390.0, "p99_us_1": 900.0,
                              "errors": 0}  # fmt: skip
        added["gateway"] = 240.0
    return {
        "started_at": "2026-11-24T08:00:00Z",
        "settings": {
            "connections": 32, "duration_s": 10, "warmup_s": 2, "latency_duration_s": 5,
            "rounds": 3, "wrk_threads": 1, "server_cpus": "0", "client_cpus": "1",
            "storage_count": 3, "data_bytes": 512, "access_log": "file", "smoke": False,
        },
        "machine": {
            "nproc": 2, "cpu_model": "AMD EPYC", "kernel": "6.1", "python": "3.11.7",
            "uvicorn": "0.54.0", "uvloop": "0.23.0", "httptools": "0.9.0", "fastapi": "0.165.0",
            "httpx": "0.28.1", "aiohttp": "3.14.5", "pyreqwest": "0.15.1",
            "nginx": "nginx version: nginx/1.22.1", "haproxy": "HAProxy version 2.6.12",
            "caddy": "2.6.2", "wrk": "wrk 4.1.0",
        },
        "medians": medians,
        "added_p50_us": added,
        "failover": {
            "nginx": {
                "kill_one": {"requests": 12956, "non_2xx": 0, "socket_errors": 0,
                             "statuses": {"200": 12956}},
                "recovery": {"during_outage": {"503": 57484},
                             "after_recovery": {"200": 10, "503": 61109},
                             "errors_after_recovery": 61109, "first_2xx_after_s": 5.4,
                             "last_error_after_s": 5.5, "socket_errors_whole_run": 3,
                             "socket_errors_by_kind": {"read": 2, "timeout": 1},
                             "window_s": 12.0},
            }
        },
    }  # fmt: skip


def row(markdown: str, label: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {label}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


class TestFigures:
    def test_cpu_ratio_to_nginx_is_ours_divided_by_theirs(self) -> None:
        assert ratios(sample_results())["nginx"]["cpu_us_per_request"] == 3.0

    def test_table_has_a_column_per_target_then_ratio_columns(self) -> None:
        header = row(render_figures(sample_results()), "figure")
        assert header[1:] == [
            "direct", "gateway", "nginx", "haproxy", "caddy",
            "gateway / nginx", "gateway / haproxy", "gateway / caddy",
        ]  # fmt: skip

    def test_cpu_row_shows_each_figure_and_the_ratios(self) -> None:
        cells = row(render_figures(sample_results()), "CPU per request")
        assert cells[1:] == ["110", "84.0", "28.0", "26.0", "210", "3.00x", "3.23x", "0.40x"]

    def test_added_latency_has_no_value_for_direct_itself(self) -> None:
        cells = row(render_figures(sample_results()), "added p50 over direct")
        assert cells[1:5] == ["-", "240", "80.0", "95.0"]

    def test_label_names_the_connection_count_of_the_run(self) -> None:
        assert "| requests/s (32 connections) |" in render_figures(sample_results())

    def test_without_our_gateway_there_are_no_ratio_columns(self) -> None:
        header = row(render_figures(sample_results(with_gateway=False)), "figure")
        assert header[1:] == ["direct", "nginx", "haproxy", "caddy"]


class TestFailover:
    def test_a_row_per_gateway_with_what_clients_saw(self) -> None:
        cells = row(render_failover(sample_results()), "nginx")
        assert cells[1:4] == ["12,956", "0", "0"]
        assert cells[4] == "57,484 x 503"
        assert cells[5] == "61,109"
        assert cells[6] == "10 x 200, 61,109 x 503"
        assert cells[7:9] == ["5.4 s", "5.5 s"]
        assert cells[9] == "3 (2 read, 1 timeout)"

    def test_the_header_names_the_recovery_window(self) -> None:
        assert "first 12 s after recovery: errors" in render_failover(sample_results())

    def test_a_drill_that_failed_is_a_row_saying_so_with_the_reason_below(self) -> None:
        results = sample_results()
        results["failover"]["caddy"] = {"error": "caddy serving from storage2 not ready after 60s"}
        text = render_failover(results)
        assert row(text, "caddy")[1:3] == ["drill failed", "-"]
        assert "- caddy: the drill failed: caddy serving from storage2 not ready after 60s" in text
        assert row(text, "nginx")[1] == "12,956"

    def test_no_answer_after_recovery_is_not_passed_off_as_no_errors(self) -> None:
        results = sample_results()
        recovery = results["failover"]["nginx"]["recovery"]
        results["failover"]["nginx"]["recovery"] = {
            **recovery, "after_recovery": {}, "errors_after_recovery": 0,
            "first_2xx_after_s": None, "last_error_after_s": None,
        }  # fmt: skip
        text = render_failover(results)
        assert row(text, "nginx")[5:7] == ["0", "none"]
        assert "- nginx: no answer at all in the 12 s after recovery" in text

    def test_a_run_without_drills_says_so(self) -> None:
        results = sample_results()
        results["failover"] = {}
        assert render_failover(results) == "(failover not run)"


def test_the_whole_report_states_settings_machine_and_versions() -> None:
    markdown = render_markdown(sample_results())
    assert "32 connections x 10 s" in markdown
    assert "servers on CPU 0, wrk on CPU 1" in markdown
    assert "nginx/1.22.1" in markdown
    assert "; caddy 2.6.2;" in markdown
    assert "2 CPUs, AMD EPYC" in markdown


class TestTargets:
    def test_ratios_exactly_at_the_targets_meet_them(self) -> None:
        results = sample_results()
        results["medians"]["gateway"]["cpu_us_per_request"] = 56.0  # nginx: 28
        results["added_p50_us"]["gateway"] = 104.0  # nginx: 80
        results["added_p99_us"] = {"gateway": 300.0, "nginx": 200.0}
        text = render_targets(results)
        assert "CPU per request at most 2x nginx's: 2.00x, met" in text
        assert "added p50 at most 1.3x nginx's: 1.30x, met" in text
        assert "added p99 at most 1.5x nginx's: 1.50x, met" in text

    def test_ratios_above_the_targets_do_not(self) -> None:
        results = sample_results()
        results["added_p50_us"]["gateway"] = 105.0
        results["added_p99_us"] = {"gateway": 301.0, "nginx": 200.0}
        text = render_targets(results)
        assert "CPU per request at most 2x nginx's: 3.00x, NOT met" in text
        assert "added p50 at most 1.3x nginx's: 1.31x, NOT met" in text
        assert "added p99 at most 1.5x nginx's: 1.50x, NOT met" in text

    def test_added_p99_is_a_row_of_the_table(self) -> None:
        results = sample_results()
        results["added_p99_us"] = {"gateway": 600.0, "nginx": 400.0}
        cells = row(render_figures(results), "added p99 over direct")
        assert cells[1:3] == ["-", "600"]
        assert cells[-3] == "1.50x"

    def test_a_failed_drill_of_our_gateway_fails_the_target(self) -> None:
        results = sample_results()
        results["failover"]["gateway"] = {"error": "gateway exited (1)"}
        assert "killed: drill failed, NOT met" in render_targets(results)

    def test_client_errors_during_the_kill_fail_the_target(self) -> None:
        results = sample_results()
        results["failover"]["gateway"] = {
            "kill_one": {"requests": 10, "non_2xx": 2, "socket_errors": 1, "statuses": {}},
            "recovery": results["failover"]["nginx"]["recovery"],
        }
        assert "killed under load: 3, NOT met" in render_targets(results)

    def test_without_direct_the_added_latency_is_not_checked_rather_than_failed(self) -> None:
        results = sample_results()
        results["added_p50_us"] = {}
        text = render_targets(results)
        assert "added p50 at most 1.3x nginx's: not measured in this run, not checked" in text
        assert "CPU per request at most 2x nginx's: 3.00x, NOT met" in text

    def test_an_added_latency_below_zero_is_noise_and_checks_nothing(self) -> None:
        results = sample_results()
        results["added_p99_us"] = {"gateway": -30.0, "nginx": 200.0}
        assert (
            "added p99 at most 1.5x nginx's: ours -30.0 us, nginx's 200 us; not checked "
            "(an added latency at or below 0 is noise)"
        ) in render_targets(results)
        results["added_p99_us"] = {"gateway": 30.0, "nginx": -20.0}
        assert "nginx's -20.0 us; not checked" in render_targets(results)
        assert row(render_figures(results), "added p99 over direct")[-3] == "-"

    def test_without_nginx_in_the_run_nothing_is_claimed(self) -> None:
        results = sample_results()
        del results["medians"]["nginx"]
        assert render_targets(results).startswith("Targets: not checked")


def memory_run(
    baseline_mib: float, peak_mib: float, after_mib: float, received: list[int], **client: object
) -> dict[str, Any]:
    results = [
        {"status": 200, "content_length": 100 * MIB, "bytes": n, "seconds": 1.5, "error": None,
         **client}
        for n in received
    ]  # fmt: skip
    complete = sum(r["status"] == 200 and r["error"] is None and r["bytes"] == 100 * MIB
                   for r in results)  # fmt: skip
    return {
        "clients": len(received), "body_bytes": 100 * MIB, "baseline_rss": int(baseline_mib * MIB),
        "peak_rss": int(peak_mib * MIB), "after_rss": int(after_mib * MIB),
        "hwm_before": int(baseline_mib * MIB), "hwm_after": int(peak_mib * MIB), "after_s": 2.0,
        "fetch_s": 3.0, "samples": 80, "results": results, "complete": complete,
    }  # fmt: skip


def with_memory() -> dict[str, Any]:
    results = sample_results()
    results["memory"] = {
        "nginx": memory_run(12.0, 14.5, 12.5, [100 * MIB] * 5),
        "gateway": memory_run(40.0, 640.0, 340.0, [100 * MIB] * 5),
        "haproxy": memory_run(
            8.0, 8.5, 8.0, [0, 0], status=503, error="IncompleteRead: 0 bytes read"
        ),
    }
    return results


class TestMemory:
    def test_rows_follow_the_usual_gateway_order(self) -> None:
        assert [row[0] for row in memory_rows(with_memory())] == ["gateway", "nginx", "haproxy"]

    def test_a_row_shows_rss_in_mib_and_what_clients_got(self) -> None:
        gateway = memory_rows(with_memory())[0]
        assert gateway[1:6] == ["40.0", "640.0", "600.0", "340.0", "640.0"]
        assert gateway[6] == "5/5"
        assert gateway[7] == "5 x 104,857,600"
        assert gateway[8] == "5 x 200"
        assert gateway[9] == "none"

    def test_short_bodies_and_errors_are_shown_per_client(self) -> None:
        haproxy = memory_rows(with_memory())[2]
        assert haproxy[6] == "0/2"
        assert haproxy[7] == "2 x 0"
        assert haproxy[8] == "2 x 503"
        assert haproxy[9] == "2 x IncompleteRead: 0 bytes read"

    def test_mixed_byte_counts_are_grouped_largest_first(self) -> None:
        results = sample_results()
        results["memory"] = {"nginx": memory_run(1, 2, 1, [50, 100 * MIB, 50])}
        assert memory_rows(results)[0][7] == "1 x 104,857,600, 2 x 50"

    def test_the_table_says_how_many_clients_fetched_how_much(self) -> None:
        text = render_memory(with_memory())
        assert "5 clients fetch a 104,857,600-byte body (100 MiB) at once" in text
        assert "| RSS 2 s after |" in text

    def test_nginx_spooling_to_disk_is_reported_from_its_log(self) -> None:
        results = with_memory()
        results["memory"]["nginx"]["temp_file_warnings"] = 5
        assert 'buffered to a temporary file" 5 time(s)' in render_memory(results)
        results["memory"]["nginx"]["temp_file_warnings"] = None
        assert "not read (log to devnull)" in render_memory(results)

    def test_a_run_without_the_memory_phase_says_so(self) -> None:
        assert render_memory(sample_results()) == "(memory phase not run)"
        assert "(memory phase not run)" in render_markdown(sample_results())


def test_baselines_get_columns_after_the_gateways() -> None:
    results = sample_results()
    for name in ("asgi-pyreqwest", "asgi-aiohttp", "fastapi-httpx"):
        results["medians"][name] = dict(results["medians"]["nginx"])
        results["added_p50_us"][name] = 100.0
    header = row(render_figures(results), "figure")
    assert header[1:9] == [
        "direct", "gateway", "nginx", "haproxy", "caddy",
        "fastapi-httpx", "asgi-aiohttp", "asgi-pyreqwest",
    ]  # fmt: skip


def cores_figures(rps: float, cpu: float, p50: float = 100.0) -> dict[str, float]:
    return {
        "requests_per_s": rps, "cpu_us_per_request": cpu, "errors": 0,
        "wrk_cpu_us_per_request": 12.0, "upstream_cpu_us_per_request": 10.0, "other_cpus": 0.05,
        "added_p50_us": p50, "added_p99_us": 3 * p50, "added_p50_us_n": 10 * p50,
        "added_p99_us_n": 30 * p50,
    }  # fmt: skip


def with_cores(counts: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    results = sample_results()
    gateway = {1: (10_000.0, 50.0), 2: (14_000.0, 54.0), 4: (15_000.0, 60.0)}
    nginx = {1: (30_000.0, 20.0), 2: (36_000.0, 21.0), 4: (36_000.0, 22.0)}
    figures = {"direct": cores_figures(60_000.0, 8.0)}
    for count in counts:
        figures[f"gateway x{count}"] = cores_figures(*gateway[count], p50=60.0)
        figures[f"nginx x{count}"] = cores_figures(*nginx[count], p50=50.0)
    mib = 1024 * 1024
    results["cores"] = {
        "counts": list(counts), "gateways": ["gateway", "nginx"], "skipped": ["mine"],
        "upstream": "one nginx process", "gateway_cpus": {"1": "0", "2": "0,1"},
        "load_cpus": {"1": "1", "2": "0,1"}, "cpus": 2, "other_cpus": {"median": 0.05, "max": 0.2},
        "figures": figures,
        "memory": {
            "gateway x2": [
                {"role": "supervisor", "pid": 10, "rss": 30 * mib, "pss": 10 * mib},
                {"role": "control", "pid": 11, "rss": 40 * mib, "pss": 20 * mib},
                {"role": "worker", "pid": 12, "rss": 50 * mib, "pss": 30 * mib},
                {"role": "worker", "pid": 13, "rss": 52 * mib, "pss": 30 * mib},
            ],
            "nginx x2": [
                {"role": "master", "pid": 20, "rss": 8 * mib, "pss": 2 * mib},
                {"role": "worker", "pid": 21, "rss": 9 * mib, "pss": 4 * mib},
                {"role": "worker", "pid": 22, "rss": 9 * mib, "pss": 4 * mib},
            ],
        },
    }  # fmt: skip
    return results


class TestCores:
    def test_scaling_is_requests_per_second_over_those_at_the_smallest_count(self) -> None:
        text = render_cores(with_cores())
        assert row(text, "gateway | 2")[3] == "1.40x"
        assert row(text, "nginx | 2")[3] == "1.20x"
        assert row(text, "gateway | 1")[3] == "1.00x"

    def test_a_row_shows_the_cpus_a_gateway_used_and_its_added_latencies(self) -> None:
        cells = row(render_cores(with_cores()), "gateway | 2")
        assert cells[2] == "14,000"
        assert cells[4:6] == ["54.0", "0.76"]
        assert cells[6:10] == ["60.0", "180", "600", "1,800"]

    def test_direct_is_the_upstream_alone_with_no_scaling(self) -> None:
        cells = row(render_cores(with_cores()), "direct")
        assert cells[1:5] == ["-", "60,000", "-", "8.0"]

    def test_the_machine_allows_less_scaling_to_a_gateway_that_costs_less(self) -> None:
        rows = {(r[0], r[1]): r[2:] for r in sharing_rows(with_cores()["cores"])}
        # 2 CPUs x 54 / (54 + 12 + 10) for ours; 2 x 21 / (21 + 22) for nginx.
        assert rows["gateway", "2"] == ["12.0", "10.0", "1.06", "0.05", "1.42x"]
        assert rows["nginx", "2"][-1] == "0.98x"
        assert rows["nginx", "1"][-1] == "-"

    def test_the_scaling_targets_are_met_or_missed_against_nginx_in_the_same_run(self) -> None:
        text = render_cores_targets(with_cores()["cores"])
        assert "scaling from 1 to 2 workers at least 90% of nginx's: 1.40x against 1.20x, " in text
        assert "117%, met" in text
        assert "with 2 workers at most 1.1x ours with 1: 1.08x, met (nginx's: 1.05x)" in text
        assert "met (this machine allows about 1.42x and 0.98x)" in text
        results = with_cores()
        results["cores"]["figures"]["gateway x2"]["requests_per_s"] = 10_700.0
        results["cores"]["figures"]["gateway x2"]["cpu_us_per_request"] = 56.0
        text = render_cores_targets(results["cores"])
        assert "1.07x against 1.20x, 89%, NOT met" in text
        assert "ours with 1: 1.12x, NOT met" in text

    def test_the_ratio_targets_are_checked_at_each_count(self) -> None:
        text = render_cores_targets(with_cores()["cores"])
        assert "- CPU per request at most 2x nginx's (2 workers each): 2.57x, NOT met" in text
        assert "- added p50 at most 1.3x nginx's (1 worker each): 1.20x, met" in text
        assert "- added p99 at most 1.5x nginx's (2 workers each): 1.20x, met" in text

    def test_scaling_is_not_checked_when_the_counts_leave_out_1_or_2(self) -> None:
        text = render_cores_targets(with_cores((2, 4))["cores"])
        assert "scaling from 1 to 2 workers: not checked" in text
        assert row(render_cores(with_cores((2, 4))), "gateway | 4")[3] == "1.07x"

    def test_each_process_of_a_gateway_is_listed_with_its_rss(self) -> None:
        text = render_cores(with_cores())
        cells = row(text, "gateway | 2 | supervisor")
        assert cells[2:] == [
            "supervisor 30.0, control 40.0, worker 50.0, worker 52.0", "51.0", "172.0", "90.0"
        ]  # fmt: skip
        assert row(text, "nginx | 2 | master")[3] == "9.0"

    def test_the_intro_says_where_everything_ran_and_who_was_left_out(self) -> None:
        text = render_cores(with_cores())
        assert "1 worker(s) on CPU 0, wrk and the upstream on CPU 1; " in text
        assert "2 worker(s) on CPU 0,1, wrk and the upstream on every CPU, shared with" in text
        assert "median 0.05 CPUs, at most 0.20" in text
        assert "`mine` is left out: its description does not list WORKERS" in text

    def test_a_run_without_the_phase_says_so(self) -> None:
        assert render_cores(sample_results()) == "(cores phase not run)"
        assert "(cores phase not run)" in render_markdown(sample_results())
        assert "### Cores" in render_markdown(with_cores())
