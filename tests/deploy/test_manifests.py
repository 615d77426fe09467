"""The Kubernetes manifests under deploy/k8s, checked offline: valid against the
Kubernetes API schemas (bundled by kubernetes-validate), and shaped the way ops rely
on (probes, resources, non-root, an autoscaler, a disruption budget and a migration
Job per service)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from oms_runtime.settings import DEVELOPMENT_JWT_SECRET, MIN_SECRET_BYTES
from oms_shipping.settings import DEVELOPMENT_CARRIER_SECRET

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SERVICES = ("order", "inventory", "payment", "shipping")
PORTS = {"order": 8000, "inventory": 8001, "payment": 8002, "shipping": 8003}
NAMESPACE = "oms"
# The oldest version the manifests claim (deploy/k8s/README.md) and the newest known.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def load_manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                found.append((str(path.relative_to(K8S)), document))
    return found


MANIFESTS = load_manifests()


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in MANIFESTS if doc["kind"] == kind}


def manifest_id(entry: tuple[str, dict[str, Any]]) -> str:
    path, doc = entry
    return f"{path}:{doc['kind']}/{doc['metadata']['name']}"


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def validate(document: dict[str, Any], version: str) -> None:
    # Strict: an unknown (e.g. misspelled) field is an error, not silently dropped.
    kubernetes_validate.validate(document, version, strict=True)


# -- schemas -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("entry", MANIFESTS, ids=manifest_id)
def test_every_manifest_is_valid_for_the_supported_kubernetes_versions(
    entry: tuple[str, dict[str, Any]], version: str
) -> None:
    validate(entry[1], version)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c.__setitem__("livenesProbe", c.pop("livenessProbe")),
        lambda c: c["resources"]["requests"].__setitem__("cpu", {"cores": 1}),
        lambda c: c["ports"][0].__setitem__("containerPort", "http"),
    ],
    ids=["misspelled-field", "wrong-shape", "wrong-type"],
)
def test_the_schema_check_rejects_a_broken_deployment(break_it: Any) -> None:
    deployment = copy.deepcopy(resources("Deployment")["order"])
    break_it(pod_spec(deployment)["containers"][0])
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, KUBERNETES_VERSIONS[0])


def test_every_namespaced_resource_is_in_the_oms_namespace() -> None:
    outside = [
        manifest_id((path, doc))
        for path, doc in MANIFESTS
        if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != NAMESPACE
    ]
    assert outside == []
    assert list(resources("Namespace")) == [NAMESPACE]


# -- deployments ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(resources("Deployment")))
def test_every_deployment_has_probes_resources_and_runs_as_non_root(name: str) -> None:
    spec = pod_spec(resources("Deployment")[name])
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "memory" in container["resources"]["limits"]
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_ready_only_when_its_database_and_broker_are(service: str) -> None:
    [container] = pod_spec(resources("Deployment")[service])["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["args"] == ["serve"]
    assert container["ports"] == [{"name": "http", "containerPort": PORTS[service]}]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_reads_its_settings_from_the_configmap_and_the_secret(
    service: str,
) -> None:
    [container] = pod_spec(resources("Deployment")[service])["containers"]
    sources = container["envFrom"]
    assert {"configMapRef": {"name": "oms-config"}} in sources
    assert {"secretRef": {"name": "oms-secrets"}} in sources
    assert "oms-config" in resources("ConfigMap")
    assert set(resources("Secret")["oms-secrets"]["stringData"]) == {
        "OMS_DATABASE_URL",
        "OMS_AMQP_URL",
        "OMS_JWT_SECRET",
        "OMS_CARRIER_SECRET",
    }


def test_the_secret_holding_placeholders_lives_with_the_dev_only_manifests() -> None:
    [(path, _)] = [(p, d) for p, d in MANIFESTS if d["kind"] == "Secret"]
    assert path.startswith("dev/")
    assert all(p.startswith("dev/") for p, d in MANIFESTS if "simulator" in d["metadata"]["name"])


# -- scaling and disruptions ---------------------------------------------------------


def selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return selector.items() <= labels.items()


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_an_autoscaler_for_its_deployment(service: str) -> None:
    hpa = resources("HorizontalPodAutoscaler")[service]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": service,
    }
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_keeps_a_pod_through_voluntary_disruptions(service: str) -> None:
    pdb = resources("PodDisruptionBudget")[service]
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    deployment = resources("Deployment")[service]
    assert selects(pdb["spec"]["selector"]["matchLabels"], deployment)
    others = [d for name, d in resources("Deployment").items() if name != service]
    assert not any(selects(pdb["spec"]["selector"]["matchLabels"], d) for d in others)
    # With one replica the budget would block every node drain.
    assert deployment["spec"]["replicas"] > pdb["spec"]["minAvailable"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_reachable_through_a_service_on_its_port(service: str) -> None:
    svc = resources("Service")[service]
    assert svc["spec"]["ports"] == [{"name": "http", "port": PORTS[service], "targetPort": "http"}]
    assert selects(svc["spec"]["selector"], resources("Deployment")[service])


# -- migrations ----------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_migration_job_running_its_own_image(service: str) -> None:
    job = resources("Job")[f"{service}-migrate"]
    [migrate] = pod_spec(job)["containers"]
    [serve] = pod_spec(resources("Deployment")[service])["containers"]
    assert migrate["args"] == ["migrate"]
    assert migrate["image"] == serve["image"]
    assert migrate["envFrom"] == serve["envFrom"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert pod_spec(job)["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_is_built_by_a_dockerfile_in_the_repository(service: str) -> None:
    [container] = pod_spec(resources("Deployment")[service])["containers"]
    assert container["image"].split(":")[0] == f"oms-{service}"
    assert (ROOT / "services" / service / "Dockerfile").is_file()


# -- secrets -----------------------------------------------------------------------------

SECRETS_OF = {
    "order": {"OMS_JWT_SECRET"},
    "inventory": {"OMS_JWT_SECRET"},
    "payment": {"OMS_JWT_SECRET"},
    "shipping": {"OMS_JWT_SECRET", "OMS_CARRIER_SECRET"},
}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_pod_needs_its_secrets_from_the_secret(service: str) -> None:
    [container] = pod_spec(resources("Deployment")[service])["containers"]
    required = {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]
        for entry in container.get("env", [])
        if "secretKeyRef" in entry.get("valueFrom", {})
    }
    assert set(required) >= SECRETS_OF[service]
    for name in SECRETS_OF[service]:
        assert required[name] == {"name": "oms-secrets", "key": name}  # not optional


def test_no_manifest_applied_in_production_carries_a_secret_value() -> None:
    for path, doc in MANIFESTS:
        if path.startswith("dev/"):
            continue
        assert doc["kind"] != "Secret", path
        text = yaml.safe_dump(doc)
        assert "dev-only" not in text and "SAMPLE" not in text, path
        for container in pod_spec(doc)["containers"] if "template" in doc.get("spec", {}) else []:
            for entry in container.get("env", []):
                assert not entry["name"].endswith("_SECRET") or "value" not in entry, path


def test_the_dev_secret_holds_marked_samples_the_services_accept() -> None:
    values = resources("Secret")["oms-secrets"]["stringData"]
    for name, development in (
        ("OMS_JWT_SECRET", DEVELOPMENT_JWT_SECRET),
        ("OMS_CARRIER_SECRET", DEVELOPMENT_CARRIER_SECRET),
    ):
        assert values[name].startswith("SAMPLE-"), name
        assert values[name] != development
        assert len(values[name].encode()) >= MIN_SECRET_BYTES


# -- the way in, queues, the dev gateway ---------------------------------------------


def test_the_order_api_is_published_over_https_by_an_ingress() -> None:
    [ingress] = resources("Ingress").values()
    [tls] = ingress["spec"]["tls"]
    assert tls["secretName"]
    backends = {
        rule["host"]: path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    # Every host served is covered by the certificate: no plain-HTTP-only host.
    assert set(backends) <= set(tls["hosts"])
    assert {"name": "order", "port": {"name": "http"}} in backends.values()
    # Only the public API and the staff console are reachable from outside.
    assert {backend["name"] for backend in backends.values()} == {"order", "console"}
    assert {"name": "console", "port": {"number": 8080}} in backends.values()


def test_the_cluster_uses_quorum_queues() -> None:
    assert resources("ConfigMap")["oms-config"]["data"]["OMS_QUEUE_TYPE"] == "quorum"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_queue_migration_job_kept_out_of_the_usual_apply(
    service: str,
) -> None:
    [(path, job)] = [
        (p, d) for p, d in MANIFESTS if d["metadata"]["name"] == f"{service}-migrate-queues"
    ]
    # Not in deploy/k8s/ itself nor migrate/: applied only while switching queue types.
    assert path.startswith("ops/")
    [container] = pod_spec(job)["containers"]
    [serve] = pod_spec(resources("Deployment")[service])["containers"]
    assert container["args"] == ["migrate-queues"]
    assert (container["image"], container["envFrom"]) == (serve["image"], serve["envFrom"])


def test_the_dev_gateway_simulator_keeps_its_ledger_and_guards_its_ops_endpoints() -> None:
    [container] = pod_spec(resources("Deployment")["gateway-simulator"])["containers"]
    env = {entry["name"]: entry for entry in container["env"]}
    assert env["OMS_GATEWAY_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "oms-secrets",
        "key": "OMS_DATABASE_URL",
    }
    # It listens beyond loopback: without a key of 16+ characters it would not start.
    assert len(env["OMS_GATEWAY_ADMIN_KEY"]["value"]) >= 16
