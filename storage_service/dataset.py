"""The dummy dataset, built once so every request serves the same pre-encoded bytes."""

import json

_ITEM_VALUE_LENGTH = 32
_COMPACT = (",", ":")


def build_body(instance: str, target_bytes: int) -> bytes:
    """Encode the `/data` body for `instance`, padded with items to about `target_bytes`.

    The body is the compact JSON `{"instance": ..., "items": [...]}` with the fewest items that
    make it at least `target_bytes` long (none when the bare document already is).
    """
    # Items are encoded once each and the length is kept as a running sum: re-encoding the
    # whole document per item made start-up quadratic (minutes for DATA_BYTES=1 MiB).
    head = json.dumps({"instance": instance, "items": []}, separators=_COMPACT).encode()
    opening, closing = head[: -len(b"]}")], b"]}"
    items: list[bytes] = []
    size = len(head)
    while size < target_bytes:
        index = len(items)
        value = (f"item-{index}-" * _ITEM_VALUE_LENGTH)[:_ITEM_VALUE_LENGTH]
        item = json.dumps({"id": index, "value": value}, separators=_COMPACT).encode()
        size += len(item) + (1 if items else 0)  # the comma before every item but the first
        items.append(item)
    return opening + b",".join(items) + closing
