"""``tfs-adapter run-local`` (what `make run` starts): both processes up, Ctrl-C stops both."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psutil

from adapter.config import load_settings
from adapter.local import wait_for_http
from adapter.modelserver.testing import free_port
from tests.contract import contract_session


def test_run_local_serves_and_stops_cleanly_on_ctrl_c(demo_models_dir: Path) -> None:
    port, tfs_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "adapter.cli", "run-local", "--models-dir", str(demo_models_dir),
        "--port", str(port), "--tfs-port", str(tfs_port), "--workers", "1",
    ]  # fmt: skip
    runner = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", [runner], timeout_s=90)
        children = psutil.Process(runner.pid).children(recursive=True)
        assert len(children) >= 3  # model server, gunicorn master, its worker
        with contract_session() as session:
            models = session.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).json()
        assert [m["name"] for m in models["models"]] == list(load_settings({}).models)

        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0
    # The first thing said once it is ready (among the access log's lines): the demo page.
    assert f"\n\nTry it in a browser: http://localhost:{port}/\nThe API is ready at" in output
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {alive}"
