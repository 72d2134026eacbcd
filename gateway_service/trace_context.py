"""W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` a request carries
to the storage service, and the trace id its access log line is found by.

A valid `traceparent` from the client goes on as it came (version 00; a later version is cut
down to its 00 fields, as the specification asks), with its `tracestate`: the gateway records
no span of its own, so the client's span stays the storage service's parent. An absent or
invalid one starts a trace here, and its `tracestate` is dropped with it; it is marked sampled
(flags 01), so the storage service may record its spans under it. A trace started here takes
the request id as its trace id when that id is one the gateway made (32 lowercase hex digits,
gateway_service/request_id.py), so the two ids a user may hold name the same request.
"""

import re
import secrets

HEADER = b"traceparent"
STATE_HEADER = b"tracestate"
_PARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL)
_HEX = b"0123456789abcdef"
_ZERO_TRACE = b"0" * 32
_ZERO_PARENT = b"0" * 16


def accept_or_start(
    value: bytes | None, request_id: bytes, generated: bool = False
) -> tuple[bytes, bytes, bool]:
    """(the traceparent to forward, its trace id, whether the client's was kept). `generated`:
    the request id is one the gateway made (32 lowercase hex digits), so it needs no check."""
    if value is None and generated:
        # The default path (no traceparent, no X-Request-ID), on every such request: its span
        # id is the random low half of the request id, so nothing is drawn or formatted here.
        return b"00-" + request_id + b"-" + request_id[16:] + b"-01", request_id, False
    if value is not None and (match := _PARENT.fullmatch(value)) is not None:
        version, trace_id, parent_id, flags, rest = match.groups()
        if (
            version != b"ff"
            and trace_id != _ZERO_TRACE
            and parent_id != _ZERO_PARENT
            and (rest is None or version != b"00")
        ):
            if version == b"00":
                return value, trace_id, True
            return b"00-" + trace_id + b"-" + parent_id + b"-" + flags, trace_id, True
    if generated or (
        len(request_id) == 32 and not request_id.translate(None, _HEX) and request_id != _ZERO_TRACE
    ):
        trace_id = request_id
    else:
        trace_id = secrets.token_hex(16).encode()
    return b"00-" + trace_id + b"-" + secrets.token_hex(8).encode() + b"-01", trace_id, False
