"""HTTP layer: idempotency keys, fault injection and routing onto the ledger."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from oms_gateway_simulator.config import GatewayConfig, seed_from_env
from oms_gateway_simulator.idempotency import (
    IdempotencyStore,
    StoredResponse,
    fingerprint,
)
from oms_gateway_simulator.ledger import TIMEOUT_BODY, Ledger, Outcome
from oms_gateway_simulator.schemas import (
    AmountRequest,
    AuthorizationRequest,
    CaptureRequest,
    ConfigUpdate,
    VoidRequest,
)

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


@dataclass
class Simulator:
    """Everything a reset throws away."""

    config: GatewayConfig
    rng: random.Random
    ledger: Ledger = field(default_factory=Ledger)
    idempotency: IdempotencyStore = field(default_factory=IdempotencyStore)
    requests_by_endpoint: Counter[str] = field(default_factory=Counter)


class Gateway:
    def __init__(self, config: GatewayConfig, seed: int | None) -> None:
        self._initial_config = config
        self._seed = seed
        self.current = self._fresh()

    def _fresh(self) -> Simulator:
        # Reseeding on reset makes a seeded run reproducible from any reset.
        return Simulator(config=self._initial_config, rng=random.Random(self._seed))

    def reset(self) -> None:
        # Swapping the whole object (rather than clearing fields) means a
        # request still in flight finishes against the old, discarded state.
        self.current = self._fresh()


def _json(status: int, body: dict[str, Any], *, replayed: bool = False) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(status_code=status, content=body, headers=headers)


def _gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _gateway(request: Request) -> Gateway:
    # async so FastAPI does not hop to a worker thread for a field lookup.
    return _gateway_of(request)


async def _api_simulator(request: Request) -> Simulator:
    """Dependency for the payment API: counts the request and adds latency."""
    sim = _gateway_of(request).current
    route = request.scope.get("route")
    sim.requests_by_endpoint[
        f"{request.method} {getattr(route, 'path', request.url.path)}"
    ] += 1
    if sim.config.latency_ms:
        await asyncio.sleep(sim.config.latency_ms / 1000)
    return sim


def _parse(model: type[M], body: bytes) -> M | Outcome:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        # Not remembered: a request that failed validation never executed,
        # so the client may fix it and resend with the same key.
        detail = json.loads(exc.json(include_url=False))
        return Outcome(
            422, {"error": "invalid_request", "detail": detail}, remember=False
        )


async def _injected_fault(sim: Simulator) -> JSONResponse | None:
    config = sim.config
    if config.failure_rate and sim.rng.random() < config.failure_rate:
        return _json(503, {"error": "unavailable"})
    if config.timeout_rate and sim.rng.random() < config.timeout_rate:
        await asyncio.sleep(config.timeout_delay_seconds)
        return _json(504, TIMEOUT_BODY)
    return None


async def _mutate(
    request: Request, sim: Simulator, execute: Callable[[bytes], Outcome]
) -> JSONResponse:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return _json(400, {"error": "idempotency_key_required"})
    # Injected faults model the network/edge failing before the gateway does
    # anything, so they come before the idempotency lookup and leave no trace.
    fault = await _injected_fault(sim)
    if fault is not None:
        return fault

    body = await request.body()
    scope = (request.url.path, key)
    body_fingerprint = fingerprint(body)
    async with sim.idempotency.lock(scope):
        stored = sim.idempotency.get(scope)
        if stored is not None:
            if stored.fingerprint != body_fingerprint:
                return _json(409, {"error": "idempotency_key_reused"})
            return _json(stored.status, stored.body, replayed=True)
        outcome = execute(body)
        if outcome.remember:
            sim.idempotency.put(
                scope, StoredResponse(body_fingerprint, outcome.status, outcome.body)
            )

    if outcome.response_lost:
        # Waiting outside the lock: the outcome is already settled, so a retry
        # with the same key can replay it while this response is "lost".
        await asyncio.sleep(sim.config.timeout_delay_seconds)
        return _json(504, TIMEOUT_BODY)
    return _json(outcome.status, outcome.body)


SimulatorDep = Annotated[Simulator, Depends(_api_simulator)]
GatewayDep = Annotated[Gateway, Depends(_gateway)]

api = APIRouter(prefix="/v1")
ops = APIRouter()


@api.post("/authorizations")
async def create_authorization(request: Request, sim: SimulatorDep) -> JSONResponse:
    def execute(body: bytes) -> Outcome:
        req = _parse(AuthorizationRequest, body)
        if isinstance(req, Outcome):
            return req
        return sim.ledger.authorize(req.amount, req.currency, req.token, req.reference)

    return await _mutate(request, sim, execute)


@api.get("/authorizations")
async def list_authorizations(reference: str, sim: SimulatorDep) -> JSONResponse:
    return _json(
        200, {"items": [a.to_json() for a in sim.ledger.by_reference(reference)]}
    )


@api.get("/authorizations/{authorization_id}")
async def get_authorization(authorization_id: str, sim: SimulatorDep) -> JSONResponse:
    auth = sim.ledger.get(authorization_id)
    if auth is None:
        return _json(404, {"error": "not_found"})
    return _json(200, auth.to_json())


@api.post("/authorizations/{authorization_id}/capture")
async def capture_authorization(
    authorization_id: str, request: Request, sim: SimulatorDep
) -> JSONResponse:
    def execute(body: bytes) -> Outcome:
        req = _parse(CaptureRequest, body if body.strip() else b"{}")
        if isinstance(req, Outcome):
            return req
        return sim.ledger.capture(authorization_id, req.amount, req.final)

    return await _mutate(request, sim, execute)


@api.post("/authorizations/{authorization_id}/void")
async def void_authorization(
    authorization_id: str, request: Request, sim: SimulatorDep
) -> JSONResponse:
    def execute(body: bytes) -> Outcome:
        if body.strip():
            req = _parse(VoidRequest, body)
            if isinstance(req, Outcome):
                return req
        return sim.ledger.void(authorization_id)

    return await _mutate(request, sim, execute)


@api.post("/authorizations/{authorization_id}/refunds")
async def refund_authorization(
    authorization_id: str, request: Request, sim: SimulatorDep
) -> JSONResponse:
    def execute(body: bytes) -> Outcome:
        req = _parse(AmountRequest, body)
        if isinstance(req, Outcome):
            return req
        return sim.ledger.refund(authorization_id, req.amount)

    return await _mutate(request, sim, execute)


# Test/ops endpoints: no idempotency, no latency or fault injection, and not
# counted, so controlling the simulator never disturbs what is being measured.


@ops.get("/v1/_stats")
async def get_stats(gateway: GatewayDep) -> JSONResponse:
    sim = gateway.current
    stats = sim.ledger.stats.to_json()
    stats["requests_by_endpoint"] = dict(sim.requests_by_endpoint)
    return _json(200, stats)


@ops.get("/v1/_config")
async def get_config(gateway: GatewayDep) -> JSONResponse:
    return _json(200, gateway.current.config.as_dict())


@ops.post("/v1/_config")
async def update_config(request: Request, gateway: GatewayDep) -> JSONResponse:
    update = _parse(ConfigUpdate, await request.body() or b"{}")
    if isinstance(update, Outcome):
        return _json(update.status, update.body)
    sim = gateway.current
    sim.config = replace(sim.config, **update.model_dump(exclude_none=True))
    logger.info("config updated: %s", sim.config)
    return _json(200, sim.config.as_dict())


@ops.post("/v1/_reset")
async def reset(gateway: GatewayDep) -> JSONResponse:
    gateway.reset()
    logger.info("state and config reset")
    return _json(200, gateway.current.config.as_dict())


@ops.get("/healthz")
async def healthz() -> JSONResponse:
    return _json(200, {"status": "ok"})


async def _on_request_validation_error(
    request: Request, exc: Exception
) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _json(
        422, {"error": "invalid_request", "detail": jsonable_encoder(exc.errors())}
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    # Keep the `{"error": code}` shape even for routing errors (404, 405).
    assert isinstance(exc, StarletteHTTPException)
    code = str(exc.detail).lower().replace(" ", "_")
    return JSONResponse(
        status_code=exc.status_code, content={"error": code}, headers=exc.headers
    )


def create_app(config: GatewayConfig | None = None, seed: int | None = None) -> FastAPI:
    """Build an independent simulator; `None` arguments are read from the environment."""
    app = FastAPI(title="OMS gateway simulator", version="0.1.0")
    app.state.gateway = Gateway(
        config if config is not None else GatewayConfig.from_env(),
        seed if seed is not None else seed_from_env(),
    )
    app.include_router(api)
    app.include_router(ops)
    app.add_exception_handler(RequestValidationError, _on_request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    return app
