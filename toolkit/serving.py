"""Who serves a gateway's `GET /data`: the way to judge a gateway that has no `/status`."""

import json
import urllib.request
from collections import Counter


def instances_served(base_url: str, requests: int, timeout: float = 2.0) -> Counter[str] | None:
    """The `instance` of each of `requests` sequential GET /data answers; None as soon as one
    is not a 200 naming an instance, or nothing answers."""
    served: Counter[str] = Counter()
    for _ in range(requests):
        try:
            # The harness's or the operator's own gateway URL (127.0.0.1 or a test container).
            with urllib.request.urlopen(base_url.rstrip("/") + "/data", timeout=timeout) as r:  # nosec B310
                body = json.loads(r.read())
        except (OSError, ValueError):
            return None
        instance = body.get("instance") if isinstance(body, dict) else None
        if not isinstance(instance, str):
            return None
        served[instance] += 1
    return served


def serves_from_all(base_url: str, storage_count: int) -> bool:
    """Whether one rotation of sequential requests was served by `storage_count` instances."""
    served = instances_served(base_url, storage_count)
    return served is not None and len(served) == storage_count
