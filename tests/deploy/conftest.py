"""Loading deploy/ files, and the adapter's registry as its pods see it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def load_docs(path: Path) -> list[dict[str, Any]]:
    """Every YAML document of ``path`` (empty ones skipped)."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def k8s_objects() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object for every manifest kustomization.yaml lists."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in kustomization["resources"]:
        for doc in load_docs(K8S / resource):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def env_of(container: dict[str, Any]) -> dict[str, str]:
    """A container's literal environment variables."""
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def materialize_config_map(
    config_map: dict[str, Any], items: list[dict[str, str]], into: Path
) -> Path:
    """Write a ConfigMap's keys where a volume with ``items`` puts them; return ``into``."""
    for item in items:
        target = into / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(config_map["data"][item["key"]], encoding="utf-8")
    return into


@pytest.fixture(scope="session")
def pod_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/k8s's registry ConfigMap written out as the adapter pod mounts it."""
    objects = k8s_objects()
    pod = objects[("Deployment", "tfs-adapter")]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "configMap" in v)
    config_map = objects[("ConfigMap", volume["configMap"]["name"])]
    into = materialize_config_map(
        config_map, volume["configMap"]["items"], tmp_path_factory.mktemp("etc-adapter")
    )
    return into / "registry.yaml"
