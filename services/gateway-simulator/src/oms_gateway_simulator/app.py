"""HTTP layer: idempotency keys, fault injection and routing onto the ledger."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from oms_gateway_simulator import ledger
from oms_gateway_simulator.config import (
    GatewayConfig,
    admin_key_from_env,
    database_url_from_env,
    seed_from_env,
)
from oms_gateway_simulator.idempotency import StoredResponse, fingerprint
from oms_gateway_simulator.ledger import TIMEOUT_BODY, Outcome
from oms_gateway_simulator.schemas import (
    AmountRequest,
    AuthorizationRequest,
    CaptureRequest,
    ConfigUpdate,
    VoidRequest,
)
from oms_gateway_simulator.store import (
    LedgerStore,
    LedgerTransaction,
    MemoryStore,
    PostgresStore,
    StoreUnavailable,
)

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

ADMIN_KEY_HEADER = "X-Admin-Key"


@dataclass
class Simulator:
    """The per-process knobs and counters a reset throws away (the ledger is reset
    in its store)."""

    config: GatewayConfig
    rng: random.Random
    requests_by_endpoint: Counter[str] = field(default_factory=Counter)


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        seed: int | None,
        store: LedgerStore,
        admin_key: str | None,
    ) -> None:
        self._initial_config = config
        self._seed = seed
        self.store = store
        self.admin_key = admin_key
        self.current = self._fresh()

    def _fresh(self) -> Simulator:
        # Reseeding on reset makes a seeded run reproducible from any reset.
        return Simulator(config=self._initial_config, rng=random.Random(self._seed))

    async def reset(self) -> None:
        await self.store.reset()
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


class AdminKeyRequired(Exception):
    pass


async def _operator(request: Request) -> Gateway:
    """Dependency for the test/ops endpoints: with an admin key configured, only a
    request carrying it may read or change the simulator's state and faults."""
    gateway = _gateway_of(request)
    if gateway.admin_key is not None:
        given = request.headers.get(ADMIN_KEY_HEADER, "").encode()
        if not hmac.compare_digest(given, gateway.admin_key.encode()):
            raise AdminKeyRequired()
    return gateway


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


Execute = Callable[[LedgerTransaction, bytes], Awaitable[Outcome]]


async def _mutate(
    request: Request, sim: Simulator, store: LedgerStore, execute: Execute
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
    body_fingerprint = fingerprint(body)
    async with store.transaction((request.url.path, key)) as transaction:
        stored = await transaction.replay()
        if stored is not None:
            if stored.fingerprint != body_fingerprint:
                return _json(409, {"error": "idempotency_key_reused"})
            return _json(stored.status, stored.body, replayed=True)
        outcome = await execute(transaction, body)
        transaction.record(outcome.recorded)
        if outcome.remember:
            transaction.remember(
                StoredResponse(body_fingerprint, outcome.status, outcome.body)
            )

    if outcome.response_lost:
        # Waiting after the commit: the outcome is already settled, so a retry
        # with the same key can replay it while this response is "lost".
        await asyncio.sleep(sim.config.timeout_delay_seconds)
        return _json(504, TIMEOUT_BODY)
    return _json(outcome.status, outcome.body)


SimulatorDep = Annotated[Simulator, Depends(_api_simulator)]
GatewayDep = Annotated[Gateway, Depends(_gateway)]
OperatorDep = Annotated[Gateway, Depends(_operator)]

api = APIRouter(prefix="/v1")
ops = APIRouter()


@api.post("/authorizations")
async def create_authorization(
    request: Request, sim: SimulatorDep, gateway: GatewayDep
) -> JSONResponse:
    async def execute(transaction: LedgerTransaction, body: bytes) -> Outcome:
        req = _parse(AuthorizationRequest, body)
        if isinstance(req, Outcome):
            return req
        outcome, auth = ledger.authorize(
            req.amount, req.currency, req.token, req.reference
        )
        if auth is not None:
            transaction.added(auth)
        return outcome

    return await _mutate(request, sim, gateway.store, execute)


@api.get("/authorizations")
async def list_authorizations(
    reference: str, sim: SimulatorDep, gateway: GatewayDep
) -> JSONResponse:
    found = await gateway.store.by_reference(reference)
    return _json(200, {"items": [a.to_json() for a in found]})


@api.get("/authorizations/{authorization_id}")
async def get_authorization(
    authorization_id: str, sim: SimulatorDep, gateway: GatewayDep
) -> JSONResponse:
    auth = await gateway.store.get(authorization_id)
    if auth is None:
        return _json(404, {"error": "not_found"})
    return _json(200, auth.to_json())


@api.post("/authorizations/{authorization_id}/capture")
async def capture_authorization(
    authorization_id: str, request: Request, sim: SimulatorDep, gateway: GatewayDep
) -> JSONResponse:
    async def execute(transaction: LedgerTransaction, body: bytes) -> Outcome:
        req = _parse(CaptureRequest, body if body.strip() else b"{}")
        if isinstance(req, Outcome):
            return req
        auth = await transaction.authorization(authorization_id)
        outcome = ledger.capture(auth, req.amount, req.final)
        if auth is not None:
            transaction.changed(auth)
        return outcome

    return await _mutate(request, sim, gateway.store, execute)


@api.post("/authorizations/{authorization_id}/void")
async def void_authorization(
    authorization_id: str, request: Request, sim: SimulatorDep, gateway: GatewayDep
) -> JSONResponse:
    async def execute(transaction: LedgerTransaction, body: bytes) -> Outcome:
        if body.strip():
            req = _parse(VoidRequest, body)
            if isinstance(req, Outcome):
                return req
        auth = await transaction.authorization(authorization_id)
        outcome = ledger.void(auth)
        if auth is not None:
            transaction.changed(auth)
        return outcome

    return await _mutate(request, sim, gateway.store, execute)


@api.post("/authorizations/{authorization_id}/refunds")
async def refund_authorization(
    authorization_id: str, request: Request, sim: SimulatorDep, gateway: GatewayDep
) -> JSONResponse:
    async def execute(transaction: LedgerTransaction, body: bytes) -> Outcome:
        req = _parse(AmountRequest, body)
        if isinstance(req, Outcome):
            return req
        auth = await transaction.authorization(authorization_id)
        outcome = ledger.refund(
            auth,
            req.amount,
            refuse_token_refunds=sim.config.refund_refused_token_active,
        )
        if auth is not None:
            transaction.changed(auth)
        return outcome

    return await _mutate(request, sim, gateway.store, execute)


# Test/ops endpoints: no idempotency, no latency or fault injection, and not
# counted, so controlling the simulator never disturbs what is being measured. With
# OMS_GATEWAY_ADMIN_KEY set they need it in the X-Admin-Key header.


@ops.get("/v1/_stats")
async def get_stats(gateway: OperatorDep) -> JSONResponse:
    stats = await gateway.store.stats()
    stats["requests_by_endpoint"] = dict(gateway.current.requests_by_endpoint)
    return _json(200, stats)


@ops.get("/v1/_config")
async def get_config(gateway: OperatorDep) -> JSONResponse:
    return _json(200, gateway.current.config.as_dict())


@ops.post("/v1/_config")
async def update_config(request: Request, gateway: OperatorDep) -> JSONResponse:
    update = _parse(ConfigUpdate, await request.body() or b"{}")
    if isinstance(update, Outcome):
        return _json(update.status, update.body)
    sim = gateway.current
    sim.config = replace(sim.config, **update.model_dump(exclude_none=True))
    logger.info("config updated: %s", sim.config)
    return _json(200, sim.config.as_dict())


@ops.post("/v1/_reset")
async def reset(gateway: OperatorDep) -> JSONResponse:
    await gateway.reset()
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


async def _on_store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("ledger unavailable: %s", exc)
    return _json(503, {"error": "unavailable"})


async def _on_admin_key_required(request: Request, exc: Exception) -> JSONResponse:
    return _json(401, {"error": "admin_key_required"})


def create_app(
    config: GatewayConfig | None = None,
    seed: int | None = None,
    *,
    store: LedgerStore | None = None,
    admin_key: str | None = None,
) -> FastAPI:
    """Build an independent simulator; `None` arguments are read from the environment
    (OMS_GATEWAY_DATABASE_URL picks a Postgres ledger, else it is kept in memory;
    OMS_GATEWAY_ADMIN_KEY guards the test/ops endpoints; "" means no key)."""
    if store is None:
        database_url = database_url_from_env()
        store = PostgresStore(database_url) if database_url else MemoryStore()
    # An empty key (given or from the environment) means none is required.
    key = admin_key if admin_key is not None else admin_key_from_env()
    gateway = Gateway(
        config if config is not None else GatewayConfig.from_env(),
        seed if seed is not None else seed_from_env(),
        store,
        key or None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if isinstance(gateway.store, MemoryStore):
            logger.warning(
                "ledger kept in memory: a restart forgets every authorization "
                "(set OMS_GATEWAY_DATABASE_URL to keep it)"
            )
        yield
        await gateway.store.close()

    app = FastAPI(title="OMS gateway simulator", version="0.2.0", lifespan=lifespan)
    app.state.gateway = gateway
    app.include_router(api)
    app.include_router(ops)
    app.add_exception_handler(RequestValidationError, _on_request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(StoreUnavailable, _on_store_unavailable)
    app.add_exception_handler(AdminKeyRequired, _on_admin_key_required)
    return app
