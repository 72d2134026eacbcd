"""Structured log lines: one JSON object per event (or key=value text on a terminal).

Writes are buffered and flushed by the event loop a few times a second, so logging every
request costs a dict and a string, not a system call per request. Lines still pending are
flushed on shutdown, and right away when no event loop runs.
"""

import asyncio
import json
import sys
import time
from json.encoder import encode_basestring_ascii
from typing import Any, TextIO

FLUSH_DELAY_SECONDS = 0.05


class EventLog:
    def __init__(self, stream: TextIO | None = None, fmt: str = "auto") -> None:
        self.stream = stream if stream is not None else sys.stderr
        if fmt == "auto":
            fmt = "text" if self.stream.isatty() else "json"
        self.json = fmt == "json"
        self._pending: list[str] = []
        self._flush_scheduled = False

    def event(self, event: str, level: str = "info", **fields: Any) -> None:
        """Log one event with its fields."""
        if self.json:
            line = json.dumps(
                {"ts": round(time.time(), 6), "level": level, "event": event, **fields},
                separators=(",", ":"),
                default=str,
            )
        else:
            stamp = time.strftime("%H:%M:%S")
            pairs = " ".join(f"{key}={value}" for key, value in fields.items())
            line = f"{stamp} {level.upper():5} {event} {pairs}"
        self._append(line)

    def _append(self, line: str) -> None:
        self._pending.append(line)
        if not self._flush_scheduled:
            self._schedule_flush()

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._pending:
            lines, self._pending = self._pending, []
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_later(FLUSH_DELAY_SECONDS, self.flush)


def log_request(
    log: EventLog,
    method: str,
    path: str,
    request_id: bytes,
    status: int,
    started: float,
    **extra: Any,
) -> None:
    """The one access line per request, whoever answered it: the proxy, the API or the server.

    `started` is a `time.perf_counter()` reading taken when the request was complete. The JSON
    line of a request answered without a failed attempt is formatted by hand: it is written for
    every request, and json.dumps of the same object costs the gateway a fifth of its CPU per
    proxied request (docs/performance.md). Request ids are of a safe alphabet
    (gateway_service/request_id.py); everything else is escaped as json does."""
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    if log.json and extra.keys() <= _PLAIN_EXTRA:
        backend = extra.get("backend")
        line = (
            f'{{"ts":{round(time.time(), 6)!r},"level":"info","event":"request",'
            f'"request_id":"{request_id.decode()}","method":{_string(method)},'
            f'"path":{_string(path)},"status":{status},"latency_ms":{latency_ms!r}'
        )
        if "trace_id" in extra:
            line += f',"trace_id":"{extra["trace_id"]}"'  # hex digits: trace_context.py
        if "backend" in extra:
            line += ',"backend":null' if backend is None else f',"backend":{_string(backend)}'
        if "address" in extra:
            line += f',"address":{_string(extra["address"])}'
        log._append(line + "}")
        return
    log.event(
        "request",
        request_id=request_id.decode(),
        method=method,
        path=path,
        status=status,
        latency_ms=latency_ms,
        **extra,
    )


_PLAIN_EXTRA = frozenset({"trace_id", "backend", "address"})
_string = encode_basestring_ascii
