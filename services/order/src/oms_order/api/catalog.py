"""The event catalog for subscribers: the AsyncAPI document and a JSON Schema per
message version, served byte for byte as published in oms_contracts."""

from __future__ import annotations

from fastapi import APIRouter, Response

from oms_contracts.catalog import ASYNCAPI_FILE, published_root, published_schema_file
from oms_runtime.problems import Problem

router = APIRouter(tags=["events"])


@router.get(
    "/events/asyncapi.json",
    summary="AsyncAPI 3.0 document of every event on oms.events",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
async def asyncapi() -> Response:
    document = published_root().joinpath(ASYNCAPI_FILE).read_bytes()
    return Response(document, media_type="application/json")


@router.get(
    "/events/schemas/{routing_key}/v{version}",
    summary="JSON Schema of one message version's `data`",
    response_class=Response,
    responses={
        200: {"content": {"application/schema+json": {}}},
        404: {"description": "No such message version"},
    },
)
async def message_schema(routing_key: str, version: int) -> Response:
    schema = published_schema_file(routing_key, version)
    if schema is None:
        raise Problem(
            404,
            "schema-not-found",
            "No such message schema",
            f"No published schema for {routing_key} version {version}",
        )
    return Response(schema.read_bytes(), media_type="application/schema+json")
