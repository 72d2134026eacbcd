"""The markdown the bench prints and saves, rendered from a results dict."""

from typing import Any

from bench.report import (
    memory_rows,
    ratios,
    render_failover,
    render_figures,
    render_markdown,
    render_memory,
    render_targets,
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
        results["medians"]["gateway"]["cpu_us_per_request"] = 70.0  # nginx: 28
        results["added_p50_us"]["gateway"] = 120.0  # nginx: 80
        text = render_targets(results)
        assert "CPU per request at most 2.5x nginx's: 2.50x, met" in text
        assert "added p50 at most 1.5x nginx's: 1.50x, met" in text

    def test_ratios_above_the_targets_do_not(self) -> None:
        results = sample_results()
        results["added_p50_us"]["gateway"] = 121.0
        text = render_targets(results)
        assert "CPU per request at most 2.5x nginx's: 3.00x, NOT met" in text
        assert "added p50 at most 1.5x nginx's: 1.51x, NOT met" in text

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
        assert "added p50 at most 1.5x nginx's: not measured in this run, not checked" in text
        assert "CPU per request at most 2.5x nginx's: 3.00x, NOT met" in text

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
