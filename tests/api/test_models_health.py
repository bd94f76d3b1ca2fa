"""``GET /v1/models``, ``/healthz`` and ``/readyz`` against the real model server."""

from __future__ import annotations

from flask.testing import FlaskClient

from adapter.app import create_app
from adapter.config import load_settings
from adapter.modelserver.testing import free_port
from tests.helpers import assert_problem

DEMO_MODELS = [
    "digits", "digits-stretch", "digit-classes", "digit-classes-bytes",
    "digits-zoo", "digits-masks", "digits-yolo", "digit-classes-keras", "digit-attributes",
]  # fmt: skip


def test_models_lists_the_demo_registry(client: FlaskClient) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200
    models = {m["name"]: m for m in response.get_json()["models"]}
    assert list(models) == DEMO_MODELS
    assert models["digits"]["task"] == "detection"
    assert models["digits"]["endpoint"] == "/v1/models/digits/detect"
    assert models["digits"]["input"] == {
        "encoding": "tensor", "dtype": "uint8", "size": [320, 320], "resize": "letterbox",
        "color": "rgb", "layout": "nhwc",
    }  # fmt: skip
    assert models["digits-stretch"]["input"]["resize"] == "stretch"
    assert models["digit-classes"]["labels"] == [str(d) for d in range(10)]
    assert models["digit-classes-bytes"]["input"]["encoding"] == "bytes"
    for model in models.values():
        assert model["serving"] == {"version": 1, "state": "AVAILABLE", "ready": True}


def test_one_model(client: FlaskClient) -> None:
    response = client.get("/v1/models/digit-classes")
    assert response.status_code == 200
    model = response.get_json()
    listed = {m["name"]: m for m in client.get("/v1/models").get_json()["models"]}
    assert model == listed["digit-classes"]
    assert model["input"]["size"] == [32, 32]
    assert model["serving"]["version"] == 1


def test_unknown_model_is_a_404(client: FlaskClient) -> None:
    body = assert_problem(client.get("/v1/models/nope"), 404, "unknown-model")
    assert "GET /v1/models" in body["detail"]


def test_models_say_when_the_model_server_is_down() -> None:
    app = create_app(load_settings({"ADAPTER_TFS_TARGET": f"127.0.0.1:{free_port()}"}))
    client = app.test_client()
    response = client.get("/v1/models/digits")
    assert response.status_code == 200  # the registry is still worth reading
    assert response.get_json()["serving"] == {
        "version": None, "state": "UNREACHABLE", "ready": False,
    }  # fmt: skip


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_every_model_available(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "ready"
    assert set(body["models"]) == set(DEMO_MODELS)
    for state in body["models"].values():
        assert state == {"ready": True, "state": "AVAILABLE", "version": 1, "circuit": "closed"}
