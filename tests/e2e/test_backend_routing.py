"""Targets with several replicas, and gRPC message limits sized from the signature."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapter.modelserver.testing import ModelServer
from tests.e2e.backends import (
    CLASSIFIER,
    adapter_client,
    classify_seven,
    copy_model,
    model_config,
    serve,
)
from tests.helpers import assert_problem


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, demo_models_dir: Path
) -> Iterator[list[ModelServer]]:
    """Two model servers on two loopback ports; replica N serves digit_classifier version N."""
    servers = []
    try:
        for version in (1, 2):
            root = tmp_path_factory.mktemp(f"replica{version}")
            base = copy_model(demo_models_dir, "digit_classifier", root / "m", [version])
            servers.append(serve(model_config(root / "models.config", {"digit_classifier": base})))
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_a_comma_list_of_replicas_spreads_calls_over_both(
    tmp_path: Path, replicas: list[ModelServer]
) -> None:
    target = ",".join(server.target for server in replicas)
    client = adapter_client(tmp_path, CLASSIFIER, target)
    served = Counter(classify_seven(client).get_json()["model"]["version"] for _ in range(20))
    # The version in each answer says which replica ran it.
    assert set(served) == {1, 2}, served
    assert min(served.values()) >= 5, served  # round robin, not one pinned replica


def test_host_names_in_a_comma_list_are_resolved(
    tmp_path: Path, replicas: list[ModelServer]
) -> None:
    target = ",".join(f"localhost:{server.port}" for server in replicas)
    client = adapter_client(tmp_path, CLASSIFIER, target)
    served = {classify_seven(client).get_json()["model"]["version"] for _ in range(10)}
    assert served == {1, 2}


def test_a_dns_target_works(tmp_path: Path, replicas: list[ModelServer]) -> None:
    client = adapter_client(tmp_path, CLASSIFIER, f"dns:///localhost:{replicas[0].port}")
    response = classify_seven(client)
    assert response.status_code == 200
    assert response.get_json()["model"]["version"] == 1


OUTPUT_FLOATS = 1_500_000  # 6 MB of float32: over gRPC's 4 MiB default


def _export_wide_classifier(export_dir: Path, *, static: bool) -> None:
    """A classifier whose probabilities have 1.5 M classes, with a static or unknown width."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    class Wide(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32, name="images")])
        def serve(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
            batch = tf.shape(images)[0]
            # Computed from the input, so the graph can't know the width.
            classes = tf.cast(tf.reduce_min(images) * 0 + OUTPUT_FLOATS, tf.int32)
            wide = tf.zeros(tf.stack([batch, classes])) + tf.reduce_mean(images)
            if static:
                wide = tf.ensure_shape(wide, [None, OUTPUT_FLOATS])
            return {"probabilities": wide}

    module = Wide()
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": module.serve})


@pytest.fixture(scope="module")
def wide_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    root = tmp_path_factory.mktemp("wide")
    models = {}
    for name, static in (("wide_static", True), ("wide_dynamic", False)):
        _export_wide_classifier(root / name / "1", static=static)
        models[name] = root / name
    server = serve(model_config(root / "models.config", models))
    yield server
    server.stop()


LIMIT = {"ADAPTER_GRPC_MAX_MESSAGE_BYTES": str(4 * 1024 * 1024)}


def test_a_large_answer_of_known_shape_is_received_whatever_the_cap(
    tmp_path: Path, wide_server: ModelServer
) -> None:
    registry = CLASSIFIER.replace("digit_classifier", "wide_static").replace(
        "background_class: 0", "background_class: null"
    )
    client = adapter_client(tmp_path, registry, wide_server.target, LIMIT)
    # Not checked against the contract: this made-up model answers image means, not
    # probabilities in 0..1; the test is about the size of the answer.
    response = classify_seven(client, contract=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(response.get_json()["classifications"]) == 5


def test_an_answer_over_the_limit_is_a_502_naming_the_limit(
    tmp_path: Path, wide_server: ModelServer
) -> None:
    registry = CLASSIFIER.replace("digit_classifier", "wide_dynamic").replace(
        "background_class: 0", "background_class: null"
    )
    client = adapter_client(tmp_path, registry, wide_server.target, LIMIT)
    body = assert_problem(classify_seven(client), 502, "backend-message-too-large")
    assert "message limit" in body["detail"]
    assert "127.0.0.1" not in body["detail"]
    assert client.get("/readyz").status_code == 200  # the server is fine; the answer was big
