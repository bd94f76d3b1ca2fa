"""Fixtures for the model server tests: tiny SavedModels (built once) and running servers.

``start_model_server`` is a factory fixture over :mod:`adapter.modelserver.testing`:
``handle = start_model_server(args, timeout)`` (also ``process, port = ...``);
every server it started is stopped at teardown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from adapter.modelserver.testing import ModelServer, install_version
from adapter.modelserver.testing import start_model_server as _start


class HalfPlusTwo(tf.Module):
    """``y = a*x + b`` on float32 plus a string signature and a matrix one."""

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a = tf.Variable(a)
        self.b = tf.Variable(b)
        self.w = tf.Variable([[1.0], [2.0]])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": self.a * x + self.b, "x2": x * 2.0}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def strings(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"length": tf.strings.length(text), "upper": tf.strings.upper(text)}

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="m")])
    def matrix(self, m: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"product": tf.matmul(m, self.w)}


def export_half_plus_two(export_dir: Path, a: float = 0.5, b: float = 2.0) -> Path:
    """Save a HalfPlusTwo SavedModel with signatures serving_default, strings, matrix."""
    module = HalfPlusTwo(a, b)
    signatures = {
        "serving_default": module.predict,
        "strings": module.strings,
        "matrix": module.matrix,
    }
    tf.saved_model.save(module, str(export_dir), signatures=signatures)
    return export_dir


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two built exports to copy from: ``plus2`` (b=2) and ``plus3`` (b=3)."""
    root = tmp_path_factory.mktemp("exports")
    return {
        "plus2": export_half_plus_two(root / "plus2", b=2.0),
        "plus3": export_half_plus_two(root / "plus3", b=3.0),
    }


CONFIG = """
model_config_list {
  config { name: "half_plus_two" base_path: "models/half_plus_two" model_platform: "tensorflow"
           version_labels { key: "canary" value: 2 } }
  config { name: "versioned" base_path: "models/versioned" model_platform: "tensorflow"
           model_version_policy { all {} }
           version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 } }
  config { name: "pinned" base_path: "models/versioned"
           model_version_policy { specific { versions: 1 } } }
}
"""


@pytest.fixture(scope="session")
def shared_config(tmp_path_factory: pytest.TempPathFactory, exports: dict[str, Path]) -> Path:
    """A config with relative base paths: half_plus_two@1, versioned@1,2 (all), pinned@1."""
    root = tmp_path_factory.mktemp("shared")
    install_version(exports["plus2"], root / "models" / "half_plus_two", 1)
    install_version(exports["plus2"], root / "models" / "versioned", 1)
    install_version(exports["plus3"], root / "models" / "versioned", 2)
    config = root / "models.config"
    config.write_text(CONFIG, encoding="utf-8")
    return config


@pytest.fixture(scope="session")
def shared_server(shared_config: Path) -> Iterator[ModelServer]:
    """One server for all read-only tests, started from :data:`CONFIG`."""
    with _start(["--model_config_file", str(shared_config)], 90) as handle:
        yield handle


@pytest.fixture(scope="session")
def channel(shared_server: ModelServer) -> Iterator[grpc.Channel]:
    """A channel to the shared server."""
    with grpc.insecure_channel(shared_server.target) as ch:
        yield ch


@pytest.fixture(scope="session")
def prediction(channel: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    """TF Serving's own PredictionService stub on the shared server."""
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="session")
def model_service(channel: grpc.Channel) -> model_service_pb2_grpc.ModelServiceStub:
    """TF Serving's own ModelService stub on the shared server."""
    return model_service_pb2_grpc.ModelServiceStub(channel)


@pytest.fixture
def start_model_server() -> Iterator[Callable[..., ModelServer]]:
    """Factory: ``start_model_server(args, timeout=90, **kw)``; all are stopped at teardown."""
    started: list[ModelServer] = []

    def start(args: Sequence[str], timeout: float = 90.0, **kwargs: object) -> ModelServer:
        handle = _start(args, timeout, **kwargs)  # type: ignore[arg-type]
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()
