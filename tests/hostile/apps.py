"""Tiny apps for real servers no one here wrote (hypercorn, gunicorn) to serve as upstreams.

Each answers every request with the body the scripted upstream calls good (it names the
request's X-Request-ID), without a Content-Length, so each server frames it its own way.
"""

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from tests.hostile.upstream import good_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def _request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    return next((v.decode() for k, v in headers if k.lower() == b"x-request-id"), "")


async def asgi_app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """For hypercorn: the body in two parts, so it is sent chunked."""
    if scope["type"] != "http":
        return
    body = good_body(_request_id(scope["headers"]))
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body[:40], "more_body": True})
    await send({"type": "http.response.body", "body": body[40:]})


def wsgi_app(
    environ: dict[str, Any], start_response: Callable[[str, list[tuple[str, str]]], object]
) -> Iterable[bytes]:
    """For gunicorn's sync worker: no length, so it frames the body itself."""
    request_id = environ.get("HTTP_X_REQUEST_ID", "")
    start_response("200 OK", [("Content-Type", "application/json")])
    body = good_body(request_id)
    return [body[:40], body[40:]]
