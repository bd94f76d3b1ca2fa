"""Command line: --models_dir serves every subdirectory; usage and config errors fail clearly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from adapter.modelserver.testing import REPO_ROOT, install_version


def run_server(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the server expecting it to exit on its own."""
    return subprocess.run(
        [sys.executable, "-m", "adapter.modelserver.server", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_models_dir_serves_each_subdirectory(
    start_model_server, exports: dict[str, Path], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    install_version(exports["plus2"], tmp_path / "alpha", 1)
    install_version(exports["plus3"], tmp_path / "beta", 3)
    (tmp_path / "notes.txt").write_text("not a model")
    started = time.monotonic()
    server = start_model_server(
        ["--models_dir", str(tmp_path), "--file_system_poll_wait_seconds", "0.2"]
    )
    print(f"startup to listening with two models: {time.monotonic() - started:.2f}s")
    with grpc.insecure_channel(server.target) as ch:
        stub = model_service_pb2_grpc.ModelServiceStub(ch)

        def versions(name: str) -> list[int]:
            req = get_model_status_pb2.GetModelStatusRequest()
            req.model_spec.name = name
            return [s.version for s in stub.GetModelStatus(req, timeout=10).model_version_status]

        assert versions("alpha") == [1]
        assert versions("beta") == [3]
        install_version(exports["plus2"], tmp_path / "gamma", 1)  # a model added while running
        deadline = time.monotonic() + 15
        while True:
            try:
                assert versions("gamma") == [1]
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline
                time.sleep(0.1)


def test_a_model_source_is_required() -> None:
    result = run_server("--port", "0")
    assert result.returncode == 2
    assert "--model_base_path" in result.stderr


def test_invalid_config_file_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "bad.config"
    config.write_text("model_config_list { config { name: 'x' base_path: 'y' nonsense: 1 } }")
    result = run_server("--model_config_file", str(config), "--port", "0", timeout=90)
    assert result.returncode == 1
    assert "Invalid protobuf file" in result.stderr
    assert "Traceback" not in result.stderr
