"""The one thing the proxy and the health checker need from a connection pool."""

from typing import Protocol

from gateway_service.upstream import UpstreamResponse


class Upstream(Protocol):
    async def request(
        self, request: bytes, connect_timeout: float, read_timeout: float
    ) -> UpstreamResponse: ...

    def close(self) -> None: ...
