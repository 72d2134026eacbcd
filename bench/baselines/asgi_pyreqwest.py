"""Baseline: a plain ASGI proxy on one shared pyreqwest async Client (Rust reqwest + hyper).

For comparing upstream HTTP clients in the same run (bench/baselines/asgi_proxy.py has the app):

    STORAGE_SERVICES=http://127.0.0.1:9001,... uvicorn bench.baselines.asgi_pyreqwest:app
"""

import functools
from datetime import timedelta

from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import ConnectTimeoutError, NetworkError
from pyreqwest.http import Url

from bench.baselines.asgi_proxy import (
    CONNECT_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    POOL_SIZE,
    READ_TIMEOUT_S,
    Headers,
    UpstreamConnectionError,
    proxy_app,
    storage_services,
)


@functools.lru_cache(maxsize=64)
def _url(url: str) -> Url:
    # Parsed once per backend: the bench asks for the same few URLs over and over.
    return Url(url)


class PyreqwestClient:
    def __init__(self) -> None:
        self._client: Client | None = None

    async def start(self) -> None:
        self._client = (
            ClientBuilder()
            .connect_timeout(timedelta(seconds=CONNECT_TIMEOUT_S))
            .read_timeout(timedelta(seconds=READ_TIMEOUT_S))
            .pool_max_idle_per_host(POOL_SIZE)
            .pool_idle_timeout(timedelta(seconds=IDLE_TIMEOUT_S))
            .follow_redirects(False)
            # A proxy passes bodies through as they are: no decompression, no Accept-Encoding.
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .build()
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def get(self, url: str) -> tuple[int, Headers, bytes]:
        assert self._client is not None
        try:
            response = await self._client.get(_url(url)).build().send()
            body = await response.bytes()
        except (NetworkError, ConnectTimeoutError) as error:
            raise UpstreamConnectionError(str(error)) from error
        headers = [(name.encode(), value.encode()) for name, value in response.headers.items()]
        return response.status, headers, bytes(body)


app = proxy_app(PyreqwestClient(), storage_services())
