"""X-Request-ID: keep a client's id when it is safe to log and forward, otherwise make one."""

import re
import secrets

HEADER = b"x-request-id"
_SAFE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def accept_or_generate(value: bytes | None) -> bytes:
    """Return the client's id if it is 1..128 characters of [A-Za-z0-9._:-], else a new one: 32
    lowercase hex digits (gateway_service/trace_context.py takes it as a trace id unchecked)."""
    if value is not None and _SAFE.fullmatch(value):
        return value
    return secrets.token_hex(16).encode()
