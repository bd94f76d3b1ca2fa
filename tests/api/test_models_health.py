"""``GET /v1/models``, ``/healthz`` and ``/readyz`` against the real model server."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_models_lists_the_demo_registry(client: FlaskClient) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200
    models = {m["name"]: m for m in response.get_json()["models"]}
    assert list(models) == ["digits", "digits-stretch", "digit-classes", "digit-classes-bytes"]
    assert models["digits"]["task"] == "detection"
    assert models["digits"]["endpoint"] == "/v1/models/digits/detect"
    assert models["digits"]["input"] == {
        "encoding": "tensor", "dtype": "uint8", "size": [320, 320], "resize": "letterbox",
        "color": "rgb", "layout": "nhwc",
    }  # fmt: skip
    assert models["digits-stretch"]["input"]["resize"] == "stretch"
    assert models["digit-classes"]["labels"] == [str(d) for d in range(10)]
    assert models["digit-classes-bytes"]["input"]["encoding"] == "bytes"


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_every_model_available(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "ready"
    assert set(body["models"]) == {
        "digits",
        "digits-stretch",
        "digit-classes",
        "digit-classes-bytes",
    }
    for state in body["models"].values():
        assert state == {"ready": True, "state": "AVAILABLE", "version": 1, "circuit": "closed"}
