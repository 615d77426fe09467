"""Operators' pages: dead letters, capacity, the live feed, the audit log."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from markupsafe import Markup

from oms_console.db.store import ConsoleStore
from oms_console.domain.charts import bar_chart, line_chart
from oms_console.domain.roles import Permission
from oms_console.upstream import SERVICES, UpstreamError
from oms_console.web.common import UpstreamDep, act
from oms_console.web.feed import EventFeed, FeedFull
from oms_console.web.render import page
from oms_console.web.security import Staff, allowed

router = APIRouter(include_in_schema=False)

Operator = Annotated[Staff, Depends(allowed(Permission.DEAD_LETTERS))]
CapacityReader = Annotated[Staff, Depends(allowed(Permission.CAPACITY))]
FeedWatcher = Annotated[Staff, Depends(allowed(Permission.LIVE_FEED))]
Auditor = Annotated[Staff, Depends(allowed(Permission.AUDIT_LOG))]


# -- dead letters ----------------------------------------------------------------


@router.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters(request: Request, staff: Operator, upstream: UpstreamDep) -> Response:
    async def of(service: str) -> dict[str, Any]:
        try:
            found = await upstream.get(service, "/admin/dead-letters", staff.name)
            return {"service": service, "queue": found["queue"], "items": found["items"]}
        except UpstreamError as exc:
            return {"service": service, "queue": None, "items": [], "error": exc.message}

    per_service = await asyncio.gather(*(of(service) for service in SERVICES))
    return await page(request, "dead_letters.html", services=per_service)


def _known_service(service: str) -> str | None:
    return service if service in SERVICES else None


@router.get("/dead-letters/{service}/{key}", response_class=HTMLResponse)
async def dead_letter(
    request: Request, service: str, key: str, staff: Operator, upstream: UpstreamDep
) -> Response:
    letter = (
        await upstream.get_or_none(service, f"/admin/dead-letters/{quote(key)}", staff.name)
        if _known_service(service)
        else None
    )
    if letter is None:
        return await page(request, "not_found.html", 404, what=f"dead letter {key}")
    return await page(request, "dead_letter.html", service=service, letter=letter)


async def _dead_letter_action(
    request: Request, staff: Staff, upstream: Any, service: str, key: str, verb: str
) -> Response:
    if not _known_service(service):
        return await page(request, "not_found.html", 404, what=f"service {service}")
    return await act(
        request,
        staff,
        action=f"{verb} dead letter",
        target=key,
        call=lambda: upstream.post(service, f"/admin/dead-letters/{quote(key)}/{verb}", staff.name),
        done=f"Dead letter {key} {verb}ed."
        if verb == "replay"
        else f"Dead letter {key} discarded.",
        back_to="/dead-letters",
        detail={"service": service},
    )


@router.post("/dead-letters/{service}/{key}/replay")
async def replay(
    request: Request, service: str, key: str, staff: Operator, upstream: UpstreamDep
) -> Response:
    return await _dead_letter_action(request, staff, upstream, service, key, "replay")


@router.post("/dead-letters/{service}/{key}/discard")
async def discard(
    request: Request, service: str, key: str, staff: Operator, upstream: UpstreamDep
) -> Response:
    return await _dead_letter_action(request, staff, upstream, service, key, "discard")


# -- capacity --------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: float
    arrival_rate: float
    utilisation: float
    predicted: float | None
    observed: int | None


class CapacityHistory:
    """The last samples per queue, taken whenever someone looks (the page refreshes
    itself every few seconds), so the charts show a trend, not only a moment."""

    def __init__(self, keep: int = 60) -> None:
        self._samples: dict[str, deque[Sample]] = {}
        self._keep = keep

    def add(self, queue: str, row: dict[str, Any]) -> list[Sample]:
        samples = self._samples.setdefault(queue, deque(maxlen=self._keep))
        samples.append(
            Sample(
                at=time.time(),
                arrival_rate=float(row.get("arrival_rate") or 0.0),
                utilisation=float(row.get("utilisation") or 0.0),
                predicted=row.get("predicted_queue_length"),
                observed=row.get("observed_depth"),
            )
        )
        return list(samples)


def _charts(row: dict[str, Any], samples: list[Sample]) -> dict[str, Markup]:
    target = float(row.get("target_utilisation") or 0.7)
    return {
        "utilisation": Markup(
            bar_chart(
                f"Utilisation of {row['queue']}",
                [("utilisation", float(row.get("utilisation") or 0.0) * 100)],
                scale_max=100,
                unit=" %",
                marker=target * 100,
                marker_label=f"target {target:.0%}",
            )
        ),
        "queue_length": Markup(
            line_chart(
                f"Predicted and observed queue length of {row['queue']}",
                [
                    ("predicted L_q (M/M/c)", [s.predicted for s in samples]),
                    (
                        "observed depth",
                        [None if s.observed is None else float(s.observed) for s in samples],
                    ),
                ],
                unit=" msgs",
                at_least=1.0,
            )
        ),
        "arrival_rate": Markup(
            line_chart(
                f"Arrival rate of {row['queue']}",
                [("arrival rate", [s.arrival_rate for s in samples])],
                unit=" /s",
            )
        ),
        "replicas": Markup(
            bar_chart(
                f"Consumers of {row['queue']}",
                [
                    ("consumers now", float(row.get("consumers") or 0)),
                    ("needed", float(row.get("replicas_needed") or 0)),
                ],
            )
        ),
    }


@router.get("/capacity", response_class=HTMLResponse)
async def capacity(
    request: Request,
    staff: CapacityReader,
    upstream: UpstreamDep,
    target: Annotated[float, Query(ge=0.05, le=1.0)] = 0.7,
) -> Response:
    history: CapacityHistory = request.app.state.capacity_history

    async def of(service: str) -> dict[str, Any]:
        try:
            report = await upstream.get(
                service, "/admin/capacity", staff.name, target_utilisation=target
            )
        except UpstreamError as exc:
            return {"service": service, "queues": [], "error": exc.message}
        queues = []
        for row in report.get("queues", []):
            samples = history.add(row["queue"], row)
            queues.append({"row": row, "charts": _charts(row, samples), "samples": len(samples)})
        return {"service": service, "queues": queues}

    reports = await asyncio.gather(*(of(service) for service in SERVICES))
    overview = Markup(
        bar_chart(
            "Utilisation per queue",
            [
                (q["row"]["queue"], float(q["row"].get("utilisation") or 0) * 100)
                for r in reports
                for q in r["queues"]
            ],
            scale_max=100,
            unit=" %",
            marker=target * 100,
            marker_label=f"target {target:.0%}",
        )
    )
    return await page(request, "capacity.html", reports=reports, overview=overview, target=target)


# -- live feed -------------------------------------------------------------------


@router.get("/feed", response_class=HTMLResponse)
async def feed_page(request: Request, staff: FeedWatcher) -> Response:
    return await page(request, "feed.html")


@router.get("/feed/events")
async def feed_events(
    request: Request,
    staff: FeedWatcher,
    pattern: Annotated[str, Query(max_length=100, pattern=r"^[A-Za-z0-9_.#*]+$")] = "#",
) -> Response:
    feed: EventFeed = request.app.state.feed

    async def events() -> AsyncIterator[str]:
        try:
            async for chunk in feed.stream([pattern]):
                if await request.is_disconnected():
                    break
                yield chunk
        except FeedFull:
            yield "event: busy\ndata: too many people are watching; try again later\n\n"
        except Exception as exc:  # the broker is away: say so, the browser retries
            yield f"event: unavailable\ndata: {type(exc).__name__}\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- audit log -------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
async def audit(
    request: Request,
    staff: Auditor,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    store: ConsoleStore = request.app.state.accounts.store
    entries = await store.audit_entries(before_id=before, limit=50)
    return await page(
        request,
        "audit.html",
        entries=entries,
        next_link=f"/audit?before={entries[-1]['id']}" if len(entries) == 50 else None,
    )
