"""The /data body: the same bytes as the original (quadratic) builder, for every size."""

import json
from typing import Any

import pytest

from storage_service.dataset import build_body

INSTANCES = ["storage-x", "", 'quote"back\\slash', "stöŕage-ünïcode", "s" * 128]


def reference_body(instance: str, target_bytes: int) -> bytes:
    """The builder as it was: re-encodes the whole document after each item (quadratic).

    Kept only here, as the definition of the expected bytes.
    """
    items: list[dict[str, Any]] = []
    body = _encode(instance, items)
    while len(body) < target_bytes:
        index = len(items)
        value = (f"item-{index}-" * 32)[:32]
        items.append({"id": index, "value": value})
        body = _encode(instance, items)
    return body


def _encode(instance: str, items: list[dict[str, Any]]) -> bytes:
    return json.dumps({"instance": instance, "items": items}, separators=(",", ":")).encode()


@pytest.mark.parametrize("instance", INSTANCES)
def test_every_small_size_matches_the_reference(instance: str) -> None:
    # Every size up to a few items past the bare document, so each item boundary is crossed.
    for target in range(0, 400):
        assert build_body(instance, target) == reference_body(instance, target), target


@pytest.mark.parametrize("target", [64, 512, 1000, 5000, 20_000, 65_536])
def test_moderate_sizes_match_the_reference(target: int) -> None:
    assert build_body("storage1", target) == reference_body("storage1", target)


@pytest.mark.parametrize("target", [64, 512, 65_536, 1_048_576])
def test_the_body_is_the_fewest_items_that_reach_the_target(target: int) -> None:
    body = build_body("storage1", target)
    document = json.loads(body)
    items = document["items"]
    assert document["instance"] == "storage1"
    assert [item["id"] for item in items] == list(range(len(items)))
    assert all(len(item["value"]) == 32 for item in items)
    assert len(body) >= target
    without_last = _encode("storage1", items[:-1])
    assert len(without_last) < target
