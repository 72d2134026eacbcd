"""The access line: the hand-formatted JSON of a plain request is the JSON json.dumps writes."""

import json
import time

import pytest

from gateway_service.logs import EventLog, log_request
from gateway_service.tests.conftest import LogSink


def logged(**extra: object) -> dict[str, object]:
    sink = LogSink()
    log = EventLog(sink, fmt="json")  # type: ignore[arg-type]
    log_request(log, "GET", extra.pop("path", "/data"), b"rid-1", 200, time.perf_counter(), **extra)  # type: ignore[arg-type]
    log.flush()
    [line] = sink.text.splitlines()
    document: dict[str, object] = json.loads(line)
    assert line == json.dumps(document, separators=(",", ":"))  # exactly json.dumps' form
    return document


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"backend": "http://storage1:8000"},
        {"backend": None},
        {"backend": "http://storage:8000", "address": "10.0.1.2"},
        {"path": '/da"ta\\\u00e9\x01'},
        {"backend": "http://storage1:8000", "failed": ["http://storage2:8000: HTTP 500"]},
        {"error": "bad request: Invalid header value char"},
    ],
    ids=["no backend", "backend", "none answered", "address", "odd path", "failed", "error"],
)
def test_every_access_line_is_one_json_object_with_the_same_fields(
    extra: dict[str, object],
) -> None:
    document = logged(**extra)
    fields = {"ts", "level", "event", "request_id", "method", "path", "status", "latency_ms"}
    assert set(document) == fields | (set(extra) - {"path"})
    assert (document["event"], document["request_id"], document["status"]) == (
        "request",
        "rid-1",
        200,
    )
    assert document["path"] == extra.get("path", "/data")
    for name, value in extra.items():
        if name != "path":
            assert document[name] == value
