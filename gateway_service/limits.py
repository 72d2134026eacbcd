"""Limits on what a client may send, checked before anything is forwarded.

uvicorn's httptools parser accepts any number and size of headers; a proxy must not pass a
64 KiB header or a thousand headers on to its backends. nginx's defaults are the model: about
32 KiB of headers in all. Over either limit the client gets 431 (RFC 6585).
"""

MAX_HEADER_COUNT = 100
MAX_HEADER_BYTES = 32 * 1024


def over_limits(count: int, size: int) -> bool:
    """True when `count` headers of `size` bytes (names + values) exceed either limit."""
    return count > MAX_HEADER_COUNT or size > MAX_HEADER_BYTES


def headers_too_large(headers: list[tuple[bytes, bytes]]) -> bool:
    return over_limits(len(headers), sum(len(name) + len(value) for name, value in headers))
