"""The comparison's report: what it states about the run, charts, summary.md, what is missing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from docker.errors import DockerException

from loadcompare.charts import share_chart, timeline_chart
from loadcompare.faults import docker_client, project_publishing
from loadcompare.machine import deployment
from loadcompare.results import Comparison, Results
from loadcompare.summary import SHARE_FILE, render, timeline_file
from loadcompare.targets import Gateway
from toolkit.faults import FaultError

SUMMARY_FILE = "summary.md"
# Run files the summary lists, besides the charts: locust's CSV and HTML, the figures, the logs.
LISTED_SUFFIXES = (".html", ".csv", ".json", ".log")


def load_generator(workers: int) -> str:
    """How the load was generated, as the summary states it."""
    if not workers:
        return "locust's local runner (one process)"
    return f"a locust master and {workers} worker processes on this machine (--processes {workers})"


def deployments(gateways: Sequence[Gateway]) -> dict[str, str]:
    """Each gateway's compose project: images and settings, as the summary states them."""
    stated: dict[str, str] = {}
    try:
        client = docker_client()
    except FaultError:
        return {"deployments": "Docker engine unreachable"}
    for gateway in gateways:
        try:
            project = project_publishing(client, urlsplit(gateway.url).port or 80)
        except (FaultError, DockerException):
            continue
        stated[f"deployment {gateway.name}"] = deployment(project)
    return stated


def write_report(out: Path, comparison: Comparison) -> Path:
    """Charts and summary.md in `out`, from the runs' results and the run's settings."""
    files = []
    for scenario, runs in comparison.results.items():
        if timeline_chart(scenario, runs, out / timeline_file(scenario)):
            files.append(timeline_file(scenario))
    if share_chart(comparison.results, comparison.gateways, out / SHARE_FILE):
        files.append(SHARE_FILE)
    files += sorted(p.name for p in out.iterdir() if p.suffix in LISTED_SUFFIXES)
    summary = out / SUMMARY_FILE
    summary.write_text(render(comparison, files))
    return summary


def missing_results(results: Results) -> list[str]:
    """One line per run that gave no usable figures: no result, an error, or no requests."""
    return [
        f"{scenario} x {gateway}: {'no result' if r is None else r.error or 'no requests'}"
        for scenario, runs in results.items()
        for gateway, r in runs.items()
        if r is None or r.error or not r.locust.requests
    ]
