"""The textbook design the project started from: a FastAPI route and one shared httpx client.

Round-robin with retry on the next backend, nothing else (no health checks, metrics or logs),
so the benchmark shows what the framework and the client cost on their own:

    STORAGE_SERVICES=http://127.0.0.1:9001,... uvicorn bench.baselines.fastapi_httpx:app
"""

import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

BACKENDS = [url.strip() for url in os.environ.get("STORAGE_SERVICES", "").split(",") if url]
_turn = itertools.count()
_client: httpx.AsyncClient | None = None


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global _client
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=1.0), limits=limits) as client:
        _client = client
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/data")
async def data() -> Response:
    assert _client is not None
    start = next(_turn)
    for step in range(len(BACKENDS)):
        url = BACKENDS[(start + step) % len(BACKENDS)]
        try:
            upstream = await _client.get(f"{url}/data")
        except httpx.HTTPError:
            continue
        if upstream.status_code < 500:
            return Response(upstream.content, upstream.status_code, media_type="application/json")
    return JSONResponse({"detail": "no storage service could answer"}, status_code=503)
