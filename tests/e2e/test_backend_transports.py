"""The other ways to TF Serving: TLS and mutual TLS on gRPC, and the REST API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from adapter.config import load_settings
from adapter.modelserver.certificates import (
    TestCertificates,
    make_test_certificates,
    write_ssl_config,
)
from adapter.modelserver.testing import ModelServer, start_model_server
from tests.e2e.backends import CLASSIFIER, SAMPLES, SEVEN, adapter_client, classify_seven
from tests.helpers import assert_problem, upload

REGISTRY = Path(__file__).resolve().parents[2] / "adapter" / "demo" / "registry.yaml"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    return make_test_certificates(tmp_path_factory.mktemp("certs"))


def _tls_server(
    demo_models_dir: Path, certs: TestCertificates, tmp: Path, *, client_verify: bool
) -> ModelServer:
    config = write_ssl_config(tmp / "ssl.config", certs, client_verify=client_verify)
    return start_model_server(
        ["--models_dir", str(demo_models_dir), "--ssl_config_file", str(config)], timeout=120
    )


@pytest.fixture(scope="module")
def mtls_server(
    demo_models_dir: Path, certificates: TestCertificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModelServer]:
    server = _tls_server(
        demo_models_dir, certificates, tmp_path_factory.mktemp("mtls"), client_verify=True
    )
    yield server
    server.stop()


# The demo registry written elsewhere: its label files by absolute path.
SEVEN_REGISTRY = REGISTRY.read_text(encoding="utf-8").replace(
    "labels: labels/", f"labels: {REGISTRY.parent / 'labels'}/"
)


def _demo_client(tmp_path: Path, target: str, env: dict[str, str]) -> FlaskClient:
    return adapter_client(tmp_path, SEVEN_REGISTRY, target, env)


def _post_seven(client: FlaskClient, model: str = "digit-classes"):  # type: ignore[no-untyped-def]
    return client.post(f"/v1/models/{model}/classify", data=upload(SEVEN))


def _classify(client: FlaskClient, model: str = "digit-classes") -> dict[str, Any]:
    response = _post_seven(client, model)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def test_mutual_tls_with_the_client_certificate(
    tmp_path: Path, mtls_server: ModelServer, certificates: TestCertificates
) -> None:
    env = {
        "ADAPTER_TFS_TLS_CA": str(certificates.ca),
        "ADAPTER_TFS_TLS_CERT": str(certificates.client_cert),
        "ADAPTER_TFS_TLS_KEY": str(certificates.client_key),
    }
    client = _demo_client(tmp_path, mtls_server.target, env)
    assert client.get("/readyz").status_code == 200
    assert _classify(client)["classifications"][0]["label"] == "7"


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="plaintext"),
        pytest.param({"ADAPTER_TFS_TLS_CA": "ca"}, id="tls-without-client-certificate"),
    ],
)
def test_without_the_client_certificate_the_adapter_is_not_ready_and_says_unavailable(
    tmp_path: Path, mtls_server: ModelServer, certificates: TestCertificates, env: dict[str, str]
) -> None:
    env = {key: str(certificates.ca) for key in env}
    # /readyz asks about every demo model: that alone must not open the circuit here.
    client = _demo_client(tmp_path, mtls_server.target, {**env, "ADAPTER_BREAKER_FAILURES": "100"})
    assert_problem(client.get("/readyz"), 503, "not-ready")
    body = assert_problem(_post_seven(client), 503, "backend-unavailable")
    assert mtls_server.target not in body["detail"]


def test_server_only_tls_with_the_ca(
    tmp_path: Path, demo_models_dir: Path, certificates: TestCertificates
) -> None:
    with _tls_server(demo_models_dir, certificates, tmp_path, client_verify=False) as server:
        env = {"ADAPTER_TFS_TLS_CA": str(certificates.ca)}
        client = _demo_client(tmp_path, server.target, env)
        assert _classify(client)["classifications"][0]["label"] == "7"


@pytest.fixture(scope="module")
def rest_server(demo_models_dir: Path) -> Iterator[ModelServer]:
    with start_model_server(["--models_dir", str(demo_models_dir)], rest=True) as server:
        yield server


def _rest_registry() -> str:
    """The demo registry with every model served over REST."""
    text, count = re.subn(
        r"serving: \{name: (\w+)", r"serving: {name: \1, transport: rest", SEVEN_REGISTRY
    )
    assert count == len(load_settings({}).models)
    return text


def test_every_demo_model_answers_the_same_over_rest_and_grpc(
    tmp_path: Path, rest_server: ModelServer
) -> None:
    (tmp_path / "grpc").mkdir()
    (tmp_path / "rest").mkdir()
    grpc_client = _demo_client(tmp_path / "grpc", rest_server.target, {})
    rest_client = adapter_client(
        tmp_path / "rest", _rest_registry(), "127.0.0.1:1",  # gRPC unused: every model is REST
        {"ADAPTER_TFS_REST_TARGET": rest_server.rest_url},
    )  # fmt: skip
    assert rest_client.get("/readyz").status_code == 200
    for model in (
        "digit-classes",
        "digit-classes-bytes",
        "digit-classes-keras",
        "digit-attributes",
    ):
        over_rest, over_grpc = _classify(rest_client, model), _classify(grpc_client, model)
        assert over_rest["classifications"] == over_grpc["classifications"]
    digits = (SAMPLES / "digits.jpg").read_bytes()
    for model in ("digits", "digits-zoo", "digits-masks", "digits-yolo"):
        answers = [
            client.post(f"/v1/models/{model}/detect", data=upload(digits)).get_json()
            for client in (rest_client, grpc_client)
        ]
        assert answers[0]["detections"] == answers[1]["detections"], model
        assert len(answers[0]["detections"]) >= 3, model


def test_a_stopped_rest_server_is_a_fast_503(tmp_path: Path, demo_models_dir: Path) -> None:
    with start_model_server(["--models_dir", str(demo_models_dir)], rest=True) as server:
        client = adapter_client(
            tmp_path, _rest_registry(), "127.0.0.1:1", {"ADAPTER_TFS_REST_TARGET": server.rest_url}
        )
        assert _classify(client)["classifications"][0]["label"] == "7"
    body = assert_problem(_post_seven(client), 503, "backend-unavailable")
    assert "127.0.0.1" not in body["detail"]


def test_the_seven_classifier_registry_works_over_rest(
    tmp_path: Path, rest_server: ModelServer
) -> None:
    registry = CLASSIFIER.replace(
        "{name: digit_classifier}", "{name: digit_classifier, transport: rest}"
    )
    client = adapter_client(
        tmp_path, registry, "127.0.0.1:1", {"ADAPTER_TFS_REST_TARGET": rest_server.rest_url}
    )
    response = classify_seven(client)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["classifications"][0]["label"] == "7"
