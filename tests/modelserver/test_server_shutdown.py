"""Lifecycle: the listening line, SIGTERM exits 0, and the test helper stays TensorFlow-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from adapter.modelserver.testing import REPO_ROOT, install_version, start_model_server


def test_sigterm_exits_zero(exports: dict[str, Path], tmp_path: Path) -> None:
    install_version(exports["plus2"], tmp_path / "m", 1)
    with start_model_server(["--model_base_path", str(tmp_path / "m")], 90) as server:
        process, port = server
        assert port == server.port > 0
        assert server.target == f"127.0.0.1:{port}"
        assert server.stdout_lines == [f"model server listening on 127.0.0.1:{port}"]
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = "default"  # TF Serving's default --model_name
        with grpc.insecure_channel(server.target) as ch:
            resp = model_service_pb2_grpc.ModelServiceStub(ch).GetModelStatus(req, timeout=10)
        assert [s.version for s in resp.model_version_status] == [1]
        assert server.stop() == 0
    assert process.returncode == 0
    assert "Received SIGTERM" in server.logs()


def test_testing_helper_does_not_import_tensorflow() -> None:
    code = (
        "import sys, adapter.modelserver.testing as t; "
        "assert t.free_port() > 0; "
        "assert not any(m.startswith('tensorflow') for m in sys.modules), 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=60)
