"""The dummy dataset, built once so every request serves the same pre-encoded bytes."""

import json
from typing import Any

_ITEM_VALUE_LENGTH = 32


def build_body(instance: str, target_bytes: int) -> bytes:
    """Encode the `/data` body for `instance`, padded with items to about `target_bytes`."""
    items: list[dict[str, Any]] = []
    body = _encode(instance, items)
    while len(body) < target_bytes:
        index = len(items)
        value = (f"item-{index}-" * _ITEM_VALUE_LENGTH)[:_ITEM_VALUE_LENGTH]
        items.append({"id": index, "value": value})
        body = _encode(instance, items)
    return body


def _encode(instance: str, items: list[dict[str, Any]]) -> bytes:
    return json.dumps({"instance": instance, "items": items}, separators=(",", ":")).encode()
