"""A service's errors answer as problem documents by their code, from any route."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from oms_runtime.problems import (
    ErrorProblems,
    ProblemType,
    install_error_problems,
    install_problem_handlers,
)


class Refused(Exception):
    code = "refused"


class NotThere(Refused):
    code = "not_there"


class Unmapped(Refused):
    code = "nobody_mapped_this"


def app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_error_problems(
        app,
        ErrorProblems(
            errors=(Refused,),
            by_code={
                Refused.code: ProblemType(409, "refused", "Refused", field="amount"),
                NotThere.code: ProblemType(404, "not-there", "Not there"),
            },
        ),
    )

    @app.post("/a")
    async def a() -> None:
        raise NotThere("No thing 7")

    @app.patch("/b")
    async def b() -> None:
        raise Refused("too much")

    @app.get("/c")
    async def c() -> None:
        raise Unmapped("who knows")

    return app


async def call(method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path)


async def test_an_error_answers_with_its_codes_problem_type_and_its_message_as_detail() -> None:
    response = await call("POST", "/a")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "/problems/not-there",
        "title": "Not there",
        "status": 404,
        "detail": "No thing 7",
        "instance": "/a",
    }


async def test_a_problem_type_that_names_a_field_says_which() -> None:
    response = await call("PATCH", "/b")

    assert (response.status_code, response.json()["field"]) == (409, "amount")


async def test_an_error_nobody_mapped_is_an_internal_error_not_a_leak_of_its_message() -> None:
    response = await call("GET", "/c")

    assert response.status_code == 500
    assert "who knows" not in response.text


def test_an_error_class_without_a_problem_type_is_named() -> None:
    problems = ErrorProblems(
        errors=(Refused,),
        by_code={Refused.code: ProblemType(409, "refused", "Refused")},
    )

    assert problems.unmapped() == ["NotThere", "Unmapped"]
