"""deploy/docker-compose.yml: valid Compose, and wired the way its comments promise.

The schema is the Compose Specification's compose-spec.json as vendored by
check-jsonschema (``--builtin-schema vendor.compose-spec``).
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import DEPLOY

COMPOSE_FILE = DEPLOY / "docker-compose.yml"
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
SERVICES: dict[str, Any] = COMPOSE["services"]
ADAPTER = SERVICES["adapter"]
TFSERVING = SERVICES["tfserving"]
GPU = SERVICES["tfserving-gpu"]


def _schema() -> Any:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text(encoding="utf-8"))


def _validator() -> jsonschema.protocols.Validator:
    schema = _schema()
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _duration_s(text: str) -> int:
    """Compose durations like ``30s`` or ``1m30s`` in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", text)
    assert "".join(n + u for n, u in parts) == text, text
    return sum(int(n) * units[u] for n, u in parts)


def _interpolate_default(value: str) -> str:
    """``${VAR:-default}`` as Compose sees it with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def test_compose_file_is_valid() -> None:
    _validator().validate(COMPOSE)


def test_compose_schema_rejects_a_typo() -> None:
    bad = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    bad["services"]["adapter"]["healthcheck"] = {"tset": ["CMD", "true"]}
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(bad)


def test_every_mounted_file_exists() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                # var/models is built by `make models`; the rest ships in the repository.
                if source == "../var/models":
                    continue
                assert (DEPLOY / source).exists(), f"{name}: {source}"
    build = ADAPTER["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()


def test_adapter_talks_to_tfserving_once_it_is_healthy() -> None:
    env = ADAPTER["environment"]
    assert _interpolate_default(env["ADAPTER_TFS_TARGET"]) == "tfserving:8500"
    assert ADAPTER["depends_on"]["tfserving"]["condition"] == "service_healthy"
    assert "healthcheck" in TFSERVING
    # The registry file is the mounted one, with its label files beside it.
    mounts = dict(v.split(":")[:2] for v in ADAPTER["volumes"])
    assert mounts["./registry.yaml"] == env["ADAPTER_MODELS"]
    assert mounts["../adapter/demo/labels"] == env["ADAPTER_MODELS"].rsplit("/", 1)[0] + "/labels"
    # `docker compose down` lets in-flight requests finish.
    assert _duration_s(ADAPTER["stop_grace_period"]) > int(env["ADAPTER_GRACEFUL_TIMEOUT_S"])
    assert ADAPTER["read_only"] is True and "/tmp" in ADAPTER["tmpfs"]


def test_tfserving_serves_models_config_with_polling() -> None:
    args = dict(a.removeprefix("--").split("=", 1) for a in TFSERVING["command"])
    mounts = dict(v.split(":")[:2] for v in TFSERVING["volumes"])
    assert mounts["./models.config"] == args["model_config_file"]
    assert mounts["../var/models"] == "/models"
    assert all(v.endswith(":ro") for v in TFSERVING["volumes"])
    assert int(args["model_config_file_poll_wait_seconds"]) > 0
    assert {p.split(":")[0] for p in TFSERVING["ports"]} == {"8500", "8501"}


def test_images_are_pinned_and_the_gpu_profile_reserves_a_gpu() -> None:
    repository, tag = TFSERVING["image"].split(":")
    assert repository == "tensorflow/serving"
    assert re.fullmatch(r"2\.\d+\.\d+", tag)
    assert GPU["image"] == f"{repository}:{tag}-gpu"
    assert GPU["profiles"] == ["gpu"]
    assert "profiles" not in TFSERVING and "profiles" not in ADAPTER
    (device,) = GPU["deploy"]["resources"]["reservations"]["devices"]
    assert "gpu" in device["capabilities"]
    assert GPU["command"] == TFSERVING["command"] and GPU["volumes"] == TFSERVING["volumes"]
