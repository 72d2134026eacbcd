"""Limits on what a client may send, checked before anything is forwarded.

uvicorn's httptools parser accepts any number and size of headers; a proxy must not pass a
64 KiB header or a thousand headers on to its backends. nginx's defaults are the model: about
32 KiB of headers in all. Over either limit the client gets 431 (RFC 6585).
"""

MAX_HEADER_COUNT = 100
MAX_HEADER_BYTES = 32 * 1024


def headers_too_large(headers: list[tuple[bytes, bytes]]) -> bool:
    if len(headers) > MAX_HEADER_COUNT:
        return True
    return sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES
