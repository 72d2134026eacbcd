"""The OpenAPI description of `GET /data`.

FastAPI documents only its own APIRoutes, and /data is served by the raw proxy (proxy.py), so
the path is described here by hand; a documented route of its own would be a second handler
for a path that must never run it.
"""

from typing import Any


def _json_content(properties: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "required": list(properties), "properties": properties}
    return {"application/json": {"schema": schema}}


_STRING = {"type": "string"}
_REQUEST_ID = {
    "X-Request-ID": {
        "description": "The client's id when valid, otherwise one made by the gateway.",
        "schema": _STRING,
    }
}


def _failure(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {**(headers or {}), **_REQUEST_ID},
        "content": _json_content({"detail": _STRING}),
    }


_ITEM = {"type": "object", "properties": {"id": {"type": "integer"}, "value": _STRING}}
DATA_PATH: dict[str, Any] = {
    "get": {
        "summary": "Data",
        "description": "Proxied round-robin to the next storage service in rotation, "
        "retried on the next one after a connection failure, timeout or 5xx; the body "
        "is the storage service's body, unchanged. HEAD is served too.",
        "operationId": "data_data_get",
        "parameters": [
            {
                "name": "X-Request-ID",
                "in": "header",
                "required": False,
                "description": "Kept and forwarded to the storage service when it is 1..128 "
                "characters of [A-Za-z0-9._:-]; any other value is replaced, not refused.",
                "schema": _STRING,
            }
        ],
        "responses": {
            "200": {
                "description": "The storage service's answer; `instance` names it.",
                "headers": _REQUEST_ID,
                "content": _json_content(
                    {"instance": _STRING, "items": {"type": "array", "items": _ITEM}}
                ),
            },
            "400": _failure("No Host header (HTTP/1.1), or more than one."),
            "431": _failure("Request header fields too large."),
            "503": _failure(
                "No storage service could answer; `detail` says which failed and how.",
                {"Retry-After": {"description": "Seconds.", "schema": {"type": "integer"}}},
            ),
            "505": _failure("HTTP version other than 1.0 or 1.1."),
        },
    }
}
