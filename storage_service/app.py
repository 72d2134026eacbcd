"""Storage service application: `uvicorn storage_service.app:app`."""

import asyncio
import sys
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from storage_service.dataset import build_body
from storage_service.faults import Fault, FaultMode
from storage_service.settings import StorageSettings


class FaultState:
    """The current fault, plus a gate that releases requests parked by the `hang` mode, and what
    the tools read back: the `/data` requests received and the last one's `traceparent`."""

    def __init__(self) -> None:
        self.fault = Fault()
        self._changed = asyncio.Event()
        self.data_requests = 0
        self.last_traceparent: str | None = None
        self._flaky_turn = 0

    def flaky_fails(self) -> bool:
        """In `flaky` mode: whether this request is one of the half that fail (every second)."""
        self._flaky_turn += 1
        return self._flaky_turn % 2 == 0

    def set(self, fault: Fault) -> None:
        self.fault = fault
        self._flaky_turn = 0
        # Wake every parked request so it re-reads the new mode, then re-arm the gate.
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_change(self) -> None:
        await self._changed.wait()


def _state(request: Request) -> FaultState:
    state: FaultState = request.app.state.faults
    return state


StateDep = Annotated[FaultState, Depends(_state)]


def create_app(settings: StorageSettings) -> FastAPI:
    """Build the storage app from explicit settings (tests pass their own)."""
    # No slash redirects: their Location is built from the client's Host header, and a
    # trailing-slash path is simply not one of ours (404, as nginx answers).
    app = FastAPI(title="storage service", version="0.1.0", redirect_slashes=False)
    app.state.faults = FaultState()
    body = build_body(settings.instance_name, settings.data_bytes)
    instance = settings.instance_name

    def health_body(status: str) -> dict[str, Any]:
        return {"status": status, "instance": instance}

    @app.get("/data")
    async def data(request: Request, faults: StateDep) -> Response:
        """Return the dummy dataset, naming this instance in `instance`."""
        faults.data_requests += 1
        faults.last_traceparent = request.headers.get("traceparent")
        while faults.fault.mode is FaultMode.HANG:
            await faults.wait_for_change()
        fault = faults.fault
        if fault.mode is FaultMode.UNAVAILABLE:
            return JSONResponse(health_body("unavailable"), status_code=503)
        if fault.mode is FaultMode.ERROR:
            return JSONResponse({"detail": "injected error", "instance": instance}, status_code=500)
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.mode is FaultMode.FLAKY and faults.flaky_fails():
            return JSONResponse({"detail": "injected error", "instance": instance}, status_code=500)
        return Response(body, media_type="application/json")

    @app.get("/health")
    async def health(faults: StateDep) -> JSONResponse:
        """200 while available, 503 while the `unavailable` fault is set."""
        if faults.fault.mode is FaultMode.UNAVAILABLE:
            return JSONResponse(health_body("unavailable"), status_code=503)
        return JSONResponse(health_body("available"))

    if settings.enable_fault_injection:
        app.include_router(_admin_router())
    return app


def _admin_router() -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["fault injection"])

    @router.get("/fault")
    async def get_fault(faults: StateDep) -> Fault:
        """The current fault state."""
        return faults.fault

    @router.put("/fault")
    async def put_fault(fault: Annotated[Fault, Body()], faults: StateDep) -> Fault:
        """Switch this instance to a fault mode (or back to `normal`)."""
        faults.set(fault)
        return fault

    @router.get("/requests")
    async def get_requests(faults: StateDep) -> dict[str, object]:
        """How many `/data` requests arrived (since start or the last reset), and the
        `traceparent` header of the last one (null when it had none)."""
        return {"data": faults.data_requests, "traceparent": faults.last_traceparent}

    @router.delete("/requests", status_code=204)
    async def reset_requests(faults: StateDep) -> None:
        """Start counting from zero."""
        faults.data_requests = 0
        faults.last_traceparent = None

    return router


def load_settings() -> StorageSettings:
    """Read settings from the environment, or exit with one clear line naming the bad setting."""
    try:
        return StorageSettings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']).upper()}={e.get('input')!r}: {e['msg']}"
            for e in error.errors()
        )
        print(f"storage_service: invalid settings: {problems}", file=sys.stderr)
        raise SystemExit(2) from None


def __getattr__(name: str) -> FastAPI:
    # `uvicorn storage_service.app:app` builds the app from the environment on first access,
    # so importing this module (tests, tools) never reads the environment.
    if name == "app":
        return create_app(load_settings())
    raise AttributeError(name)
