"""Small result folders as each tool writes them, made in a test's tmp_path."""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from loadcompare.plan import Scenario
from loadcompare.results import Comparison, LocustTotals
from loadcompare.tests.factories import META, run_result
from toolkit.suite_results import RESULTS_FILE

MACHINE = {
    "nproc": 2,
    "cpu_model": "Test CPU",
    "memory": "1.0 GiB",
    "os": "Linux 6.1 (x86_64)",
    "kernel": "6.1",
    "python": "3.11.7",
    "summary": "Test CPU, 2 cores, 1.0 GiB RAM",
}
# What a user's gateway file could name its gateway and its deviation: markup, in both.
HOSTILE_NAME = '<script>document.title="owned"</script>'
HOSTILE_REASON = '"><img src=x onerror="document.title=\'owned\'">'


def cell(outcome: str, reason: str | None = None) -> dict[str, Any]:
    return {"outcome": outcome, "reason": reason}


def suite(root: Path, key: str, stamp: str = "20261204T080000Z", **changes: Any) -> Path:
    """A suite's results.json: two gateways, one case of each outcome."""
    document: dict[str, Any] = {
        "suite": key,
        "started_at": "2026-12-04T08:00:00Z",
        "finished_at": "2026-12-04T08:10:00Z",
        "machine": MACHINE,
        "pytest_args": [],
        "exit_status": 1,
        "gateways": ["gateway", "nginx"],
        "measurements": {
            "6. first 2xx after the first is back (s)": {"gateway": "0.00", "nginx": "3.65"},
            "5. recovery (s)": {"gateway": "0.62 (no traffic)"},
        },
        "cases": [
            {
                "id": "tests/contract/test_balance.py::test_rotation",
                "group": "1. balance",
                "results": {"gateway": cell("pass"), "nginx": cell("pass")},
            },
            {
                "id": "tests/contract/test_status.py::test_status",
                "group": "7. /status",
                "results": {
                    "gateway": cell("pass"),
                    "nginx": cell("deviation", "nginx: no /status counters"),
                },
            },
            {
                "id": "tests/contract/test_edge.py::test_bad_header",
                "group": "10. bad input",
                "results": {
                    "gateway": cell("fail", "AssertionError: 502 != 400"),
                    "nginx": cell("skip", "needs root"),
                },
            },
        ],
    }
    document.update(changes)
    folder = root / key / stamp
    folder.mkdir(parents=True)
    (folder / RESULTS_FILE).write_text(json.dumps(document))
    return folder


def bench(root: Path, stamp: str = "20261204T064600Z", *, smoke: bool = False) -> Path:
    medians = {
        "direct": {"requests_per_s": 7713.0, "cpu_us_per_request": 129.0, "errors": 0},
        "gateway": {"requests_per_s": 5017.0, "cpu_us_per_request": 48.8, "errors": 0},
        "nginx": {"requests_per_s": 4855.0, "cpu_us_per_request": 35.8, "errors": 0},
    }
    document = {
        "started_at": "2026-12-04T06:46:00Z",
        "settings": {"connections": 32, "smoke": smoke},
        "machine": {"nproc": 2, "cpu_model": "AMD EPYC", "kernel": "6.1"},
        "medians": medians,
        "added_p50_us": {"gateway": 210.0, "nginx": 154.0},
        "added_p99_us": {"gateway": 143.0, "nginx": 76.0},
    }
    folder = root / "bench" / stamp
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(document))
    (folder / "results.md").write_text("# bench\n")
    return folder


def png() -> bytes:
    """A valid 1x1 PNG: the charts a load comparison draws, in miniature."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x4e\x79\xa7")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def loadtest(root: Path, stamp: str = "20261126T090000Z", *, mode: str = "full") -> Path:
    totals = LocustTotals(requests=4000, failures=0, fail_ratio=0.0, rps=200.2, p50_ms=7.0)
    results = {
        Scenario.STEADY: {
            "ours": run_result(Scenario.STEADY, totals, share={"storage1": 1334}),
            "nginx": run_result(Scenario.STEADY, totals),
        }
    }
    meta = replace(META, mode=mode, context={"machine": "Test CPU, 2 cores, 1.0 GiB RAM"})
    folder = root / "loadtest" / stamp
    folder.mkdir(parents=True)
    Comparison(results, meta).save(folder)
    (folder / "timeline-steady.png").write_bytes(png())
    (folder / "summary.md").write_text("# load\n")
    return folder
