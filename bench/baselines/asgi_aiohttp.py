"""Baseline: a plain ASGI proxy on one shared aiohttp.ClientSession (keep-alive pool).

For comparing upstream HTTP clients in the same run (bench/baselines/asgi_proxy.py has the app):

    STORAGE_SERVICES=http://127.0.0.1:9001,... uvicorn bench.baselines.asgi_aiohttp:app
"""

import functools

import aiohttp
from yarl import URL

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
def _url(url: str) -> URL:
    # Parsed once per backend: the bench asks for the same few URLs over and over.
    return URL(url)


class AiohttpClient:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=POOL_SIZE, keepalive_timeout=IDLE_TIMEOUT_S, use_dns_cache=True
        )
        timeout = aiohttp.ClientTimeout(
            total=None, connect=CONNECT_TIMEOUT_S, sock_read=READ_TIMEOUT_S
        )
        # A proxy passes bodies through as they are: no decompression, no Accept-Encoding.
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding",),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, url: str) -> tuple[int, Headers, bytes]:
        assert self._session is not None
        try:
            async with self._session.get(_url(url), allow_redirects=False) as response:
                body = await response.read()
                return response.status, list(response.raw_headers), body
        except aiohttp.ClientConnectionError as error:
            raise UpstreamConnectionError(str(error)) from error


app = proxy_app(AiohttpClient(), storage_services())
