"""deploy/models.config served by the local model server, with the container's registry.

The same text proto TF Serving reads in docker-compose.yml (base paths under
/models) is pointed at the demo models, served, and called through the adapter
with the registry the pods mount: labels resolve, and ``?version=canary`` works.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from adapter.app import create_app
from adapter.config import load_settings
from adapter.modelserver.config import VersionPolicy, load_config_file
from adapter.modelserver.testing import ModelServer, start_model_server
from tests.deploy.conftest import DEPLOY, ROOT
from tests.helpers import upload

SAMPLES = ROOT / "adapter" / "demo" / "samples"
CONTAINER_MODELS = '"/models/'  # where docker-compose.yml mounts ../var/models


@pytest.fixture(scope="module")
def local_config(demo_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/models.config with its container base paths moved to the demo models."""
    text = (DEPLOY / "models.config").read_text(encoding="utf-8")
    assert text.count(CONTAINER_MODELS) == 3
    path = tmp_path_factory.mktemp("tfs-config") / "models.config"
    path.write_text(text.replace(CONTAINER_MODELS, f'"{demo_models_dir}/'), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def served(local_config: Path) -> Iterator[ModelServer]:
    with start_model_server(["--model_config_file", str(local_config)]) as server:
        yield server


@pytest.fixture(scope="module")
def deploy_client(served: ModelServer, pod_registry: Path) -> FlaskClient:
    settings = load_settings(
        {"ADAPTER_MODELS": str(pod_registry), "ADAPTER_TFS_TARGET": served.target}
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    return app.test_client()


def test_models_config_lists_the_demo_models_with_labels(local_config: Path) -> None:
    models = {m.name: m for m in load_config_file(str(local_config)).configs()}
    assert set(models) == {"digit_detector", "digit_classifier", "digit_classifier_bytes"}
    assert dict(models["digit_detector"].labels) == {"stable": 1, "canary": 1}
    pinned = VersionPolicy(kind="specific", versions=frozenset({1}))
    assert models["digit_detector"].policy == pinned
    for model in models.values():
        assert model.labels["stable"] in model.policy.select([1])
        assert model.base_path.is_dir()


def test_every_model_is_ready_through_its_label(deploy_client: FlaskClient) -> None:
    response = deploy_client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    models = response.get_json()["models"]
    assert set(models) == {"digits", "digit-classes", "digit-classes-bytes"}
    assert all(m["ready"] for m in models.values())


def test_detect_on_stable_and_canary(deploy_client: FlaskClient) -> None:
    image = (SAMPLES / "digits.jpg").read_bytes()
    for query in ("", "?version=canary"):
        response = deploy_client.post(f"/v1/models/digits/detect{query}", data=upload(image))
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["model"] == {"name": "digits", "version": 1}
        assert body["detections"]


def test_classify_bytes_through_its_label(deploy_client: FlaskClient) -> None:
    image = (SAMPLES / "seven.png").read_bytes()
    response = deploy_client.post("/v1/models/digit-classes-bytes/classify", data=upload(image))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["model"] == {"name": "digit-classes-bytes", "version": 1}
    assert body["classifications"][0]["label"] == "7"
