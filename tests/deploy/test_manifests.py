"""deploy/k8s and deploy/knative: valid against their schemas, and safe to roll and drain.

Kubernetes objects are checked with kubernetes-validate's strict schemas (unknown
fields rejected) for the oldest and newest Kubernetes it ships; the Knative
Service against the schema of cloudcoil-models-knative-serving (generated from
Knative Serving's CRD) made strict the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.knative_serving.serving import v1 as knative_v1

from adapter.config import load_registry
from tests.deploy.conftest import DEPLOY, K8S, ROOT, env_of, k8s_objects, load_docs

KUBERNETES_VERSIONS = [kubernetes_validate.utils.all_versions()[0], "latest"]
KNATIVE = DEPLOY / "knative" / "service.yaml"
OBJECTS = k8s_objects()
ADAPTER = OBJECTS[("Deployment", "tfs-adapter")]
ADAPTER_POD = ADAPTER["spec"]["template"]["spec"]
(ADAPTER_CONTAINER,) = ADAPTER_POD["containers"]
TFSERVING = OBJECTS[("Deployment", "tfserving")]
HEADLESS = OBJECTS[("Service", "tfserving-headless")]


def _k8s_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _port(container: dict[str, Any], name_or_number: str | int) -> int:
    """A container port by name (or the number itself)."""
    if isinstance(name_or_number, int):
        return name_or_number
    return next(p["containerPort"] for p in container["ports"] if p["name"] == name_or_number)


def _prestop_sleep_s(container: dict[str, Any]) -> int:
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    return int(command[1])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", _k8s_files(), ids=lambda p: p.name)
def test_kubernetes_manifest_is_valid(path: Path, version: str) -> None:
    if version == "latest":
        version = kubernetes_validate.utils.latest_version()
    for doc in load_docs(path):
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_rejects_a_typo() -> None:
    bad = yaml.safe_load(yaml.safe_dump(ADAPTER))
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.utils.latest_version(), strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert sorted(kustomization["resources"]) == [p.name for p in _k8s_files()]


def test_adapter_probes_hit_health_routes_on_the_container_port() -> None:
    port = _port(ADAPTER_CONTAINER, "http")
    assert port == int(env_of(ADAPTER_CONTAINER)["ADAPTER_BIND"].rsplit(":", 1)[1])
    probes = {
        kind: ADAPTER_CONTAINER[kind]["httpGet"]
        for kind in ("readinessProbe", "livenessProbe", "startupProbe")
    }
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    assert {_port(ADAPTER_CONTAINER, p["port"]) for p in probes.values()} == {port}


def test_adapter_termination_outlasts_prestop_and_drain() -> None:
    graceful_s = int(env_of(ADAPTER_CONTAINER)["ADAPTER_GRACEFUL_TIMEOUT_S"])
    sleep_s = _prestop_sleep_s(ADAPTER_CONTAINER)
    assert sleep_s >= 5  # long enough for endpoint removal to reach the load balancers
    assert ADAPTER_POD["terminationGracePeriodSeconds"] >= sleep_s + graceful_s


def test_adapter_runs_unprivileged_on_a_read_only_root() -> None:
    assert ADAPTER_POD["securityContext"]["runAsNonRoot"] is True
    assert ADAPTER_POD["securityContext"]["runAsUser"] != 0
    security = ADAPTER_CONTAINER["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # gunicorn's control files and PROMETHEUS_MULTIPROC_DIR need a writable /tmp.
    mounts = {m["mountPath"]: m["name"] for m in ADAPTER_CONTAINER["volumeMounts"]}
    volumes = {v["name"]: v for v in ADAPTER_POD["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_adapter_has_requests_and_limits() -> None:
    resources = ADAPTER_CONTAINER["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert {"cpu", "memory"} <= resources["limits"].keys()


def test_prometheus_scrapes_metrics_on_the_container_port() -> None:
    annotations = ADAPTER["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == _port(ADAPTER_CONTAINER, "http")


def test_adapter_reaches_tfserving_through_the_headless_service() -> None:
    namespace = yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"]
    assert HEADLESS["spec"]["clusterIP"] == "None"
    grpc_port = next(p["port"] for p in HEADLESS["spec"]["ports"] if p["name"] == "grpc")
    target = env_of(ADAPTER_CONTAINER)["ADAPTER_TFS_TARGET"]
    name = HEADLESS["metadata"]["name"]
    assert target == f"dns:///{name}.{namespace}.svc.cluster.local:{grpc_port}"
    pod_labels = TFSERVING["spec"]["template"]["metadata"]["labels"]
    assert HEADLESS["spec"]["selector"].items() <= pod_labels.items()


def test_tfserving_rotates_connections_and_drains() -> None:
    pod = TFSERVING["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = dict(a.removeprefix("--").split("=", 1) for a in container["args"])
    assert args["model_config_file"].startswith("/config/")
    channel = dict(kv.split("=") for kv in args["grpc_channel_arguments"].split(","))
    age_s = int(channel["grpc.max_connection_age_ms"]) / 1000
    grace_s = int(channel["grpc.max_connection_age_grace_ms"]) / 1000
    sleep_s = _prestop_sleep_s(container)
    assert sleep_s >= age_s + grace_s  # every adapter connection has moved before exit
    assert pod["terminationGracePeriodSeconds"] > sleep_s


def test_service_hpa_and_pdb_select_the_adapter() -> None:
    pod_labels = ADAPTER["spec"]["template"]["metadata"]["labels"]
    service = OBJECTS[("Service", "tfs-adapter")]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert _port(ADAPTER_CONTAINER, service["spec"]["ports"][0]["targetPort"]) == 8080
    hpa = OBJECTS[("HorizontalPodAutoscaler", "tfs-adapter")]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "tfs-adapter",
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    pdb = OBJECTS[("PodDisruptionBudget", "tfs-adapter")]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # A drain can always evict one pod: the budget leaves room below the HPA's floor.
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_config_maps_carry_the_deploy_files_verbatim() -> None:
    registry = OBJECTS[("ConfigMap", "tfs-adapter-registry")]["data"]
    assert registry["registry.yaml"] == (DEPLOY / "registry.yaml").read_text()
    assert registry["digits.txt"] == (ROOT / "adapter/demo/labels/digits.txt").read_text()
    models = OBJECTS[("ConfigMap", "tfserving-models-config")]["data"]
    assert models["models.config"] == (DEPLOY / "models.config").read_text()


def test_the_pods_registry_loads(pod_registry: Path) -> None:
    models = load_registry(pod_registry)
    assert set(models) == {"digits", "digit-classes", "digit-classes-bytes"}
    assert models["digits"].labels is not None


# --- Knative -------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """Reject unknown fields: additionalProperties false wherever properties are listed."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(item) for item in schema]
    return schema


KNATIVE_SCHEMA = _strict(knative_v1.Service.model_json_schema(by_alias=True))
(KSERVICE,) = load_docs(KNATIVE)
KSPEC = KSERVICE["spec"]["template"]["spec"]
(KCONTAINER,) = KSPEC["containers"]
KANNOTATIONS = KSERVICE["spec"]["template"]["metadata"]["annotations"]


def test_knative_service_is_valid() -> None:
    assert KSERVICE["apiVersion"] == "serving.knative.dev/v1"
    assert KSERVICE["kind"] == "Service"
    jsonschema.Draft202012Validator(KNATIVE_SCHEMA).validate(KSERVICE)


def test_knative_schema_rejects_what_knative_does_not_allow() -> None:
    bad = yaml.safe_load(yaml.safe_dump(KSERVICE))
    # Knative's container schema has no lifecycle hooks.
    bad["spec"]["template"]["spec"]["containers"][0]["lifecycle"] = {"preStop": {}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(KNATIVE_SCHEMA).validate(bad)


def test_knative_scales_to_zero_within_bounds() -> None:
    assert KANNOTATIONS["autoscaling.knative.dev/min-scale"] == "0"
    max_scale = int(KANNOTATIONS["autoscaling.knative.dev/max-scale"])
    assert max_scale >= 1
    concurrency = KSPEC["containerConcurrency"]
    env = env_of(KCONTAINER)
    # The hard limit is what gunicorn can take at once; the soft target is below it.
    assert concurrency == int(env["ADAPTER_WORKERS"]) * int(env["ADAPTER_THREADS"])
    assert 0 < float(KANNOTATIONS["autoscaling.knative.dev/target"]) <= concurrency
    assert KSPEC["timeoutSeconds"] >= int(env["ADAPTER_WORKER_TIMEOUT_S"])


def test_knative_probes_and_env_match_the_deployment() -> None:
    assert KCONTAINER["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert KCONTAINER["livenessProbe"]["httpGet"]["path"] == "/healthz"
    (port,) = KCONTAINER["ports"]
    assert port["containerPort"] == int(env_of(KCONTAINER)["ADAPTER_BIND"].rsplit(":", 1)[1])
    assert KCONTAINER["securityContext"]["runAsNonRoot"] is True
    shared = ("ADAPTER_MODELS", "ADAPTER_TFS_TARGET", "ADAPTER_GRACEFUL_TIMEOUT_S")
    assert {k: env_of(KCONTAINER)[k] for k in shared} == {
        k: env_of(ADAPTER_CONTAINER)[k] for k in shared
    }
    volume = next(v for v in KSPEC["volumes"] if "configMap" in v)
    assert ("ConfigMap", volume["configMap"]["name"]) in OBJECTS
