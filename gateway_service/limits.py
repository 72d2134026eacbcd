"""Limits on what a client may send, and on what a storage service may answer with.

nginx's defaults are the model. A request line or a header line longer than one of its large
header buffers (8 KiB) is refused (414, or 431 for a header line); so are more than 100 header
fields or 32 KiB of them (431, RFC 6585). The gateway forwards no request body, so it reads one
only to keep the connection's framing, and refuses one over nginx's `client_max_body_size`
(1 MiB: 413). A connection serves at most nginx's `keepalive_requests` (1,000) requests, and
parses at most a few pipelined requests ahead of the one being answered, so a client flooding one
connection holds a bounded amount of the gateway's memory. The same head limits apply to a
storage service's response head (gateway_service/upstream.py).
"""

MAX_HEADER_COUNT = 100
MAX_HEADER_BYTES = 32 * 1024
MAX_LINE_BYTES = 8 * 1024
MAX_BODY_BYTES = 1024 * 1024
MAX_REQUESTS_PER_CONNECTION = 1000
# Requests parsed but not yet answered, per connection; past this, reading pauses.
MAX_PIPELINED = 16


def over_limits(count: int, size: int) -> bool:
    """True when `count` headers of `size` bytes (names + values) exceed either limit."""
    return count > MAX_HEADER_COUNT or size > MAX_HEADER_BYTES


def headers_too_large(headers: list[tuple[bytes, bytes]]) -> bool:
    return over_limits(len(headers), sum(len(name) + len(value) for name, value in headers))
