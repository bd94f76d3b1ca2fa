"""``tfs-adapter run-local``: the model server and the adapter together, for `make run`.

Starts the local model server on a loopback gRPC port, then the adapter
under gunicorn pointed at it, waits until ``/readyz`` says ready, prints where
to send requests, and on Ctrl-C (or SIGTERM) stops the adapter first (so
in-flight requests finish), then the model server.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO

READY_TIMEOUT_S = 120.0
SAMPLES = "adapter/demo/samples"
# The deploy config in a checkout; an installed wheel has only the packaged one it re-exports.
DEPLOY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py"
PACKAGED_CONFIG = "python:adapter.gunicorn_conf"


def gunicorn_config() -> str:
    """``deploy/gunicorn.conf.py`` when run from a checkout, else the packaged settings."""
    return str(DEPLOY_CONFIG) if DEPLOY_CONFIG.is_file() else PACKAGED_CONFIG


def spawn(
    command: Sequence[str], env: Mapping[str, str] | None = None, output: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child in its own session, so Ctrl-C reaches only us and we stop it in order.

    ``output`` (default: ours) receives the child's stdout and stderr.
    """
    return subprocess.Popen(
        list(command),
        env=dict(env or os.environ),
        stdout=output,
        stderr=None if output is None else subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> int:
    """SIGTERM a child and wait for it; SIGKILL it if it outlives ``timeout_s``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def wait_for_http(url: str, children: Sequence[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """Poll ``url`` until it answers 200; fail early if a child exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in children:
            if child.poll() is not None:
                raise RuntimeError(f"{child.args!r} exited with status {child.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} was not ready within {timeout_s:.0f} s")


def model_server_command(models_dir: Path, port: int) -> list[str]:
    """The command line of the local model server on loopback ``port``."""
    return [
        sys.executable, "-m", "adapter.modelserver.server",
        "--models_dir", str(models_dir), "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip


def adapter_command(port: int, workers: int) -> list[str]:
    """The command line of the adapter under gunicorn on ``port`` (:func:`gunicorn_config`)."""
    return [
        sys.executable, "-m", "gunicorn", "-c", gunicorn_config(),
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
    ]  # fmt: skip


def _print_banner(port: int) -> None:
    base = f"http://localhost:{port}"
    print(
        f"\nTry it in a browser: {base}/\n"
        f"The API is ready at {base} (docs: {base}/docs)\n"
        f"  models:   curl {base}/v1/models\n"
        f"  detect:   curl -F image=@{SAMPLES}/digits.jpg {base}/v1/models/digits/detect\n"
        f"  classify: curl -F image=@{SAMPLES}/seven.png {base}/v1/models/digit-classes/classify\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )


def main(argv: list[str]) -> int:
    """Run both processes until Ctrl-C or SIGTERM; exit 0 after a clean stop."""
    parser = argparse.ArgumentParser(prog="tfs-adapter run-local", description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("var/models"))
    parser.add_argument("--port", type=int, default=8080, help="adapter HTTP port (8080)")
    parser.add_argument("--tfs-port", type=int, default=8500, help="model server gRPC port")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    args = parser.parse_args(argv)

    stopping = False

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    env = {**os.environ, "ADAPTER_TFS_TARGET": f"127.0.0.1:{args.tfs_port}"}
    model_server = spawn(model_server_command(args.models_dir.resolve(), args.tfs_port), env)
    adapter = spawn(adapter_command(args.port, args.workers), env)
    failed = False
    try:
        wait_for_http(
            f"http://127.0.0.1:{args.port}/readyz", [model_server, adapter], READY_TIMEOUT_S
        )
        _print_banner(args.port)
        while not stopping and model_server.poll() is None and adapter.poll() is None:
            time.sleep(0.2)
    except (RuntimeError, TimeoutError) as exc:
        failed = not stopping
        print(f"run-local: {exc}", file=sys.stderr)
    finally:
        print("stopping the adapter and the model server...", flush=True)
        stop(adapter)
        stop(model_server)
    # A child that died on its own is a failure; a stop we were asked for is not.
    return 1 if failed or not stopping else 0
