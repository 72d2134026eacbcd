"""The admin API (docs/admin-api.md): backends listed, added, removed, weighed and drained at
run time, on a port of its own (`ADMIN_PORT`, off by default) served by the control process.

The control process is the only writer of the backend table (gateway_service/board.py), so the
API changes it there: `Roster` keeps the entries (what `STORAGE_SERVICES` lists, as edited) and
each entry's weight and drain state, and writes the table through the balancer, as discovery
does. Workers learn every change from the board; nothing of this is served on the public port.
A `SIGHUP` to the supervisor reaches the control process, which reads `STORAGE_SERVICES_FILE`
again through the same path.
"""

import asyncio
import hmac
import json
import re
import time
from typing import Any
from urllib.parse import parse_qs

from gateway_service.app import Gateway
from gateway_service.backends import Backend
from gateway_service.board import MAX_WEIGHT, URL_BYTES
from gateway_service.proxy import Message, Receive, Scope, Send
from gateway_service.responses import send_json
from gateway_service.settings import StorageURL, parse_storage_url, read_storage_services
from gateway_service.status import endpoint

PREFIX = "/admin/backends"
# A drain answers once its backends have no attempt awaiting an answer; past this long beyond
# the proxy's own deadlines a worker is stuck, and it answers anyway, saying how many are left.
DRAIN_POLL_SECONDS = 0.005
_URL = re.compile(r"http://[^/?#@\s]+:[0-9]{1,5}")


class AdminError(Exception):
    """A request the API refuses: its status and what to tell the client."""

    def __init__(self, status: int, error: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers or []


class Roster:
    """The entries behind the backend table, as the control process edits them."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.balancer = gateway.balancer
        self.discovery = gateway.discovery
        self._lock = asyncio.Lock()
        self._settings_entries = {s.url: s for s in gateway.settings.storage_services}

    @property
    def entries(self) -> list[StorageURL]:
        return list(self.discovery.storages)

    def find(self, url: str) -> StorageURL | None:
        return next((storage for storage in self.discovery.storages if storage.url == url), None)

    def restore(self) -> None:
        """In a (re)started control process: take the entries, weights and drains from the
        board, where an earlier control process may have changed them."""
        backends = self.balancer.backends
        if self.balancer.board.edited:
            self.discovery.storages = list(dict.fromkeys(b.storage for b in backends))
        for backend in backends:
            if backend.weight != 1:
                self.balancer.weights[backend.url] = backend.weight
            if backend.draining:
                self.balancer.draining.add(backend.url)

    def storage_for(self, url: str) -> StorageURL:
        """The entry for a normalised URL: a start-up one as written, else as workers will parse
        it from the board."""
        return self._settings_entries.get(url) or parse_storage_url(url)

    async def _apply(self, entries: list[StorageURL], *, resolve: bool = False) -> None:
        """Make `entries` the entries and write the table for them, their names resolved first
        when some are new: the listing never shows entries the table does not have yet."""
        if resolve:
            await self.discovery.resolve(entries)
        self.balancer.board.mark_edited()
        self.discovery.storages = entries
        self.gateway.follow(self.discovery.members(), rewrite=True)

    async def add(self, storage: StorageURL, weight: int) -> None:
        async with self._lock:
            if self.find(storage.url) is not None:
                raise AdminError(409, f"{storage.url} is already a backend")
            self.balancer.weights[storage.url] = weight
            await self._apply([*self.discovery.storages, storage], resolve=True)
        self.gateway.log.event("admin_added", url=storage.url, weight=weight)

    async def remove(self, url: str) -> None:
        async with self._lock:
            self._known(url)
            self.balancer.weights.pop(url, None)
            self.balancer.draining.discard(url)
            await self._apply([s for s in self.discovery.storages if s.url != url])
        self.gateway.log.event("admin_removed", url=url)

    async def reweigh(self, url: str, weight: int) -> None:
        async with self._lock:
            self._known(url)
            self.balancer.weights[url] = weight
            await self._apply(self.entries)
        self.gateway.log.event("admin_weight", url=url, weight=weight)

    async def drain(self, url: str, within: float) -> int:
        """Take `url` out of the rotation; return once no attempt on it awaits an answer (at most
        `within` seconds): the number still awaiting one then (0 but for a stuck worker)."""
        async with self._lock:
            self._known(url)
            self.balancer.draining.add(url)
            await self._apply(self.entries)
        # The rotation without it is on the board, written under the lock a round-robin pick
        # holds: an attempt picked before is counted in flight already, and none is picked
        # after. A least_request pick takes no lock: one that read the old rotation an instant
        # before is counted within microseconds, so the first look comes a poll later.
        deadline = time.monotonic() + within
        if self.balancer.balancing.least_request:
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        left = self.in_flight(url)
        while left and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_SECONDS)
            left = self.in_flight(url)
        self.gateway.log.event("admin_drained", url=url, in_flight=left)
        return left

    async def undrain(self, url: str) -> None:
        async with self._lock:
            self._known(url)
            self.balancer.draining.discard(url)
            await self._apply(self.entries)
        self.gateway.log.event("admin_undrained", url=url)

    async def reload(self, path: str) -> None:
        """SIGHUP: the entries become those of the file; a file that cannot be used changes
        nothing and is logged."""
        try:
            entries = read_storage_services(path)
        except ValueError as error:
            self.gateway.log.event("reload_failed", level="error", error=str(error))
            return
        async with self._lock:
            urls = {storage.url for storage in entries}
            for stale in set(self.balancer.weights) - urls:
                del self.balancer.weights[stale]
            self.balancer.draining &= urls
            await self._apply([self.storage_for(s.url) for s in entries], resolve=True)
        self.gateway.log.event("reloaded", storage_services=sorted(urls))

    def in_flight(self, url: str) -> int:
        return sum(b.in_flight for b in self.balancer.backends if b.url == url)

    def _known(self, url: str) -> None:
        if self.find(url) is None:
            raise AdminError(404, f"{url} is not a backend")

    def listing(self) -> list[dict[str, Any]]:
        now = self.gateway.clock()
        by_url: dict[str, list[Backend]] = {}
        for backend in self.balancer.backends:
            by_url.setdefault(backend.url, []).append(backend)
        items = []
        for storage in self.discovery.storages:
            backends = by_url.get(storage.url, [])
            items += [_item(backend, now) for backend in backends]
            if not backends:  # a name that resolves to nothing yet
                items.append(
                    {
                        "url": storage.url,
                        "address": None,
                        "weight": self.balancer.weights.get(storage.url, 1),
                        "state": "draining" if storage.url in self.balancer.draining else "down",
                        "in_flight": 0,
                        "requests_served": 0,
                    }
                )
        return items


def _item(backend: Backend, now: float) -> dict[str, Any]:
    state = "draining" if backend.draining else "up" if backend.available(now) else "down"
    return {
        "url": backend.url,
        "address": endpoint(backend.address, backend.storage.port),
        "weight": backend.weight,
        "state": state,
        "in_flight": backend.in_flight,
        "requests_served": backend.requests_served,
    }


# Requests: what each path accepts.
_ROUTES: dict[str, tuple[str, ...]] = {
    PREFIX: ("GET", "POST", "DELETE"),
    f"{PREFIX}/weight": ("PUT",),
    f"{PREFIX}/drain": ("POST",),
    f"{PREFIX}/undrain": ("POST",),
}


def parse_url(value: object) -> str:
    """A backend URL as the API takes it, `http://host:port`, normalised; AdminError 400."""
    if not isinstance(value, str):
        raise AdminError(400, "url must be a string: http://host:port")
    if not _URL.fullmatch(value) or len(value.encode()) > URL_BYTES:
        raise AdminError(400, f"url {value!r} is not http://host:port")
    try:
        return parse_storage_url(value).url
    except ValueError as error:
        raise AdminError(400, f"url {error}") from None


def parse_weight(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise AdminError(400, f"weight must be a whole number from 1 to {MAX_WEIGHT}")
    if not 1 <= value <= MAX_WEIGHT:
        raise AdminError(400, f"weight {value} is out of range 1..{MAX_WEIGHT}")
    return value


def parse_body(body: bytes, required: set[str], optional: frozenset[str] = frozenset()) -> Any:
    """The JSON object of a request: `required` fields present, nothing unknown; AdminError."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise AdminError(400, "the body must be a JSON object") from None
    if not isinstance(document, dict):
        raise AdminError(400, "the body must be a JSON object")
    missing = sorted(required - document.keys())
    if missing:
        raise AdminError(400, f"missing field(s): {', '.join(missing)}")
    unknown = sorted(document.keys() - required - optional)
    if unknown:
        raise AdminError(400, f"unknown field(s): {', '.join(unknown)}")
    return document


class AdminAPI:
    """The ASGI app of the admin port."""

    def __init__(self, roster: Roster, token: str, drain_within: float) -> None:
        self.roster = roster
        self._authorization = f"Bearer {token}".encode()
        self.drain_within = drain_within
        self.log = roster.gateway.log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan: nothing to start
        status = 500
        try:
            status, document = await self._answer(scope, receive)
            await send_json(send, status, document, [])
        except AdminError as error:
            status = error.status
            await send_json(send, status, {"error": error.error}, error.headers)
        finally:
            self.log.event(
                "admin_request", method=scope["method"], path=scope["path"], status=status
            )

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        if not self._authorized(scope["headers"]):
            raise AdminError(
                401, "missing or wrong bearer token", [(b"www-authenticate", b"Bearer")]
            )
        path, method = scope["path"], scope["method"]
        allowed = _ROUTES.get(path)
        if allowed is None:
            raise AdminError(404, f"no such path: {path}")
        if method not in allowed:
            allow = ", ".join(allowed).encode()
            raise AdminError(405, f"{method} is not allowed on {path}", [(b"allow", allow)])
        body = await _body(receive)
        roster = self.roster
        if path == PREFIX and method == "GET":
            return 200, {"backends": roster.listing()}
        if path == PREFIX and method == "DELETE":
            url = parse_url(_query_url(scope))
            await roster.remove(url)
            return 200, {"url": url, "removed": True}
        if path == PREFIX:
            fields = parse_body(body, {"url"}, frozenset({"weight"}))
            url = parse_url(fields["url"])
            weight = parse_weight(fields.get("weight", 1))
            await roster.add(roster.storage_for(url), weight)
            return 201, {"url": url, "weight": weight}
        if path.endswith("/weight"):
            fields = parse_body(body, {"url", "weight"})
            url = parse_url(fields["url"])
            weight = parse_weight(fields["weight"])
            await roster.reweigh(url, weight)
            return 200, {"url": url, "weight": weight}
        url = parse_url(parse_body(body, {"url"})["url"])
        if path.endswith("/undrain"):
            await roster.undrain(url)
            return 200, {"url": url, "state": "undrained"}
        left = await roster.drain(url, self.drain_within)
        return 200, {"url": url, "state": "draining", "in_flight": left}

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        given = [value for name, value in headers if name == b"authorization"]
        # Constant time: how much of a guess matched must not show in how long the answer took.
        return len(given) == 1 and hmac.compare_digest(given[0], self._authorization)


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            return b""
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _query_url(scope: Scope) -> object:
    try:
        query = parse_qs(scope["query_string"].decode(), strict_parsing=True)
    except (ValueError, UnicodeError):
        raise AdminError(400, "the query must be url=http://host:port") from None
    if set(query) != {"url"} or len(query["url"]) != 1:
        raise AdminError(400, "the query must be url=http://host:port")
    return query["url"][0]
