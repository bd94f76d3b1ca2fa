"""Hot versions: a half-written dir is survived, a new version is served, a removed one unloaded."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from adapter.modelserver.testing import install_version

State = get_model_status_pb2.ModelVersionStatus.State


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``condition`` every 0.1 s until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


class Client:
    """Predict + GetModelStatus for model ``hpt`` on one server."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        self.status_stub = model_service_pb2_grpc.ModelServiceStub(channel)

    def predict(self, version: int | None = None) -> tuple[int, float]:
        """Return (serving version, y for x=0)."""
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "hpt"
        if version is not None:
            req.model_spec.version.value = version
        req.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros([1], np.float32)))
        resp = self.predict_stub.Predict(req, timeout=10)
        return resp.model_spec.version.value, float(tf.make_ndarray(resp.outputs["y"])[0])

    def states(self) -> dict[int, tuple[str, int]]:
        """version → (state name, error code) from GetModelStatus."""
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = "hpt"
        resp = self.status_stub.GetModelStatus(req, timeout=10)
        return {
            s.version: (State.Name(s.state), s.status.error_code) for s in resp.model_version_status
        }


def copy_without_pb(export: Path, target: Path) -> None:
    """Write everything but saved_model.pb: a version dir still being written."""
    shutil.copytree(export, target, ignore=shutil.ignore_patterns("saved_model.pb"))


def finish_pb(export: Path, target: Path) -> None:
    """Add saved_model.pb atomically, completing the version dir."""
    shutil.copy(export / "saved_model.pb", target / ".saved_model.pb.tmp")
    (target / ".saved_model.pb.tmp").rename(target / "saved_model.pb")


def test_version_lifecycle(start_model_server, exports: dict[str, Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base = tmp_path / "hpt"
    install_version(exports["plus2"], base, 1)
    server = start_model_server(
        [
            "--model_base_path",
            str(base),
            "--model_name",
            "hpt",
            "--file_system_poll_wait_seconds",
            "0.2",
        ]
    )
    with grpc.insecure_channel(server.target) as channel:
        client = Client(channel)
        assert client.predict() == (1, 2.0)

        # A half-written version 2 fails to load, is retried, and v1 keeps serving.
        copy_without_pb(exports["plus3"], base / "2")
        wait_for(lambda: client.states().get(2, ("", 0))[1] == grpc.StatusCode.NOT_FOUND.value[0])
        assert client.states()[1] == ("AVAILABLE", 0)
        assert client.predict() == (1, 2.0)

        # Once complete, version 2 is loaded, served as latest, and v1 is unloaded.
        finish_pb(exports["plus3"], base / "2")
        wait_for(lambda: client.states() == {2: ("AVAILABLE", 0), 1: ("END", 0)})
        assert client.predict() == (2, 3.0)

        # Removing version 2 unloads it; version 1 is aspired again and comes back.
        shutil.rmtree(base / "2")
        wait_for(lambda: client.states() == {2: ("END", 0), 1: ("AVAILABLE", 0)})
        assert client.predict() == (1, 2.0)
        try:
            client.predict(version=2)
            raise AssertionError("version 2 should be gone")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.NOT_FOUND
            assert err.details() == "Servable not found for request: Specific(hpt, 2)"
    assert server.process.poll() is None
    assert "Successfully loaded servable version {name: hpt version: 2}" in server.logs()
    assert "Done unloading servable version {name: hpt version: 2}" in server.logs()
