"""The gateway's own JSON answers (503, 431), sent straight through ASGI."""

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def send_json(
    send: Send, status: int, document: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps(document).encode()
    start_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})
