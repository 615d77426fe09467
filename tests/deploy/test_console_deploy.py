"""The console's container, compose service and Kubernetes manifests: like the
services' (tests/deploy/test_*.py check what they all share), with no relay and no
broker consumer, and pointed at the services' HTTP APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dockerfile
import yaml

ROOT = Path(__file__).resolve().parents[2]


def final_stage() -> list[dockerfile.Command]:
    commands = list(dockerfile.parse_file(str(ROOT / "services" / "console" / "Dockerfile")))
    last_from = max(i for i, c in enumerate(commands) if c.cmd == "FROM")
    return commands[last_from:]


def manifests() -> list[dict[str, Any]]:
    found = []
    for path in sorted((ROOT / "deploy" / "k8s").rglob("*.yaml")):
        found += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return found


def resource(kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_the_console_image_serves_the_console_on_8080() -> None:
    stage = final_stage()
    [entrypoint] = [c for c in stage if c.cmd == "ENTRYPOINT"]
    [cmd] = [c for c in stage if c.cmd == "CMD"]
    [expose] = [c for c in stage if c.cmd == "EXPOSE"]
    assert entrypoint.value == ("python", "-m", "oms_console")
    assert cmd.value == ("serve",)
    assert expose.value == ("8080",)


def test_compose_runs_the_console_after_its_migration_against_the_services() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    console = services["console"]
    assert services["console-migrate"]["command"] == ["migrate"]
    assert console["depends_on"]["console-migrate"] == {
        "condition": "service_completed_successfully"
    }
    assert console["environment"]["OMS_ORDER_URL"] == "http://order:8000"
    assert console["environment"]["OMS_SHIPPING_URL"] == "http://shipping:8003"
    assert "8080:8080" in console["ports"]


def test_kubernetes_runs_the_console_with_its_migration_job_and_service() -> None:
    deployment = resource("Deployment", "console")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("oms-console:")
    assert container["args"] == ["serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in container["env"]}
    assert env["OMS_ORDER_URL"]["value"] == "http://order:8000"
    # The first admin's password is optional and never defaulted: a Secret the
    # operator creates (or `oms-console create-user` in the pod).
    password = env["OMS_CONSOLE_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert password["optional"] is True
    service = resource("Service", "console")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http"}]
    [migrate] = resource("Job", "console-migrate")["spec"]["template"]["spec"]["containers"]
    assert migrate["args"] == ["migrate"] and migrate["image"] == container["image"]
