"""The Dockerfiles, read with Docker's own parser (the `dockerfile` package) since no
engine runs here to build them: multi-stage, non-root, a health check, and
nothing copied that the build context (.dockerignore) leaves out."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import dockerfile
import pathspec
import pytest

ROOT = Path(__file__).resolve().parents[2]
PORTS = {"order": 8000, "inventory": 8001, "payment": 8002, "shipping": 8003, "console": 8080}
IMAGES = (*PORTS, "gateway-simulator")


def instructions(image: str) -> tuple[dockerfile.Command, ...]:
    return dockerfile.parse_file(str(ROOT / "services" / image / "Dockerfile"))


def final_stage(image: str) -> list[dockerfile.Command]:
    commands = list(instructions(image))
    last_from = max(i for i, c in enumerate(commands) if c.cmd == "FROM")
    return commands[last_from:]


def only(commands: list[dockerfile.Command], cmd: str) -> dockerfile.Command:
    [found] = [c for c in commands if c.cmd == cmd]
    return found


@cache
def dockerignore() -> pathspec.PathSpec:
    # Docker's matching is close enough to git's for the patterns used there.
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return pathspec.PathSpec.from_lines("gitignore", lines)


@pytest.mark.parametrize("image", IMAGES)
def test_each_image_is_built_in_one_stage_and_runs_from_a_slim_one(image: str) -> None:
    stages = [c for c in instructions(image) if c.cmd == "FROM"]
    assert len(stages) == 2
    assert all(stage.value[0] == "python:3.11-slim" for stage in stages)
    copied_in = [c for c in final_stage(image) if c.cmd == "COPY"]
    assert all(c.flags == ("--from=build",) for c in copied_in), "only the built venv"


@pytest.mark.parametrize("image", IMAGES)
def test_each_image_runs_as_a_numeric_non_root_user(image: str) -> None:
    user = only(final_stage(image), "USER").value[0]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0
    assert gid.isdigit() and int(gid) != 0


@pytest.mark.parametrize("image", IMAGES)
def test_each_image_checks_its_own_health_endpoint(image: str) -> None:
    healthcheck = only(final_stage(image), "HEALTHCHECK")
    assert healthcheck.value[0] == "CMD"
    assert "/healthz" in healthcheck.value[-1]


@pytest.mark.parametrize("service", PORTS)
def test_each_service_image_serves_on_its_port_by_default(service: str) -> None:
    stage = final_stage(service)
    assert only(stage, "ENTRYPOINT").value == ("python", "-m", f"oms_{service}")
    assert only(stage, "CMD").value == ("serve",)
    assert only(stage, "EXPOSE").value == (str(PORTS[service]),)
    env = only(stage, "ENV").value
    settings = dict(zip(env[::2], env[1::2], strict=True))
    assert settings[f"OMS_{service.upper()}_PORT"] == str(PORTS[service])
    assert settings["OMS_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("image", IMAGES)
def test_everything_an_image_copies_exists_and_is_in_the_build_context(image: str) -> None:
    ignored = dockerignore()
    for copy in instructions(image):
        if copy.cmd != "COPY" or copy.flags:
            continue
        for source in copy.value[:-1]:
            assert (ROOT / source).exists(), source
            assert not ignored.match_file(source), source


@pytest.mark.parametrize(
    "path",
    [
        "libs/contracts/catalog/asyncapi.json",
        "libs/contracts/catalog/schemas/order.created.v1.json",
        "services/order/src/oms_order/db/migrations/versions/0001_initial.py",
        "services/order/alembic.ini",
        "services/gateway-simulator/README.md",
    ],
)
def test_the_build_context_keeps_the_files_the_packages_ship(path: str) -> None:
    assert (ROOT / path).exists()
    assert not dockerignore().match_file(path)


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "libs/contracts/src/oms_contracts/__pycache__/catalog.cpython-311.pyc",
        # Leftovers of an old setuptools build would end up in the image's wheel.
        "services/order/build/lib/oms_order/main.py",
        "services/gateway-simulator/.mypy_cache/3.11/cache.db",
        "tests/e2e/test_happy_path.py",
        "services/order/tests/unit/test_order_saga.py",
    ],
)
def test_the_build_context_leaves_out_local_state_and_tests(path: str) -> None:
    assert dockerignore().match_file(path)
