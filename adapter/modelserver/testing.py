"""Run the model server as a subprocess, for tests and scripts; never imports TensorFlow.

Example::

    with start_model_server(["--models_dir", str(models)], rest=True) as server:
        channel = grpc.insecure_channel(server.target)
        requests.get(f"{server.rest_url}/v1/models/digit_detector")
        ...

The handle also unpacks as ``process, port = start_model_server(...)``. For TLS,
:func:`make_test_certificates` and :func:`write_ssl_config` (see
:mod:`adapter.modelserver.certificates`) make a CA, server and client pairs
and the ``--ssl_config_file`` to pass.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from adapter.modelserver.certificates import (
    TestCertificates,
    make_test_certificates,
    write_ssl_config,
)

LISTENING = "model server listening on"  # the line server.main() prints when ready
REST_LISTENING = "model server REST API listening on"  # then this one, with --rest_api_port
REST_BIND_FAILED = "Failed to start HTTP Server"
__all__ = [
    "ModelServer",
    "TestCertificates",
    "free_port",
    "install_version",
    "make_test_certificates",
    "start_model_server",
    "write_ssl_config",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
_LOG_FILES: list[Path] = []  # servers' stderr files, removed when this process exits


@atexit.register
def _remove_log_files() -> None:
    """Delete the stderr files of the servers this process started."""
    for path in _LOG_FILES:
        with contextlib.suppress(OSError):
            path.unlink()


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free a moment ago on ``host`` (default 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def install_version(export_dir: Path, base_path: Path, version: int) -> Path:
    """Copy a SavedModel to ``base_path/<version>`` atomically (copy aside, then rename).

    This is how a new version should be deployed under a running server; returns
    the new version directory.
    """
    base_path.mkdir(parents=True, exist_ok=True)
    staging = base_path / f".staging-{version}-{os.getpid()}"
    shutil.copytree(export_dir, staging)
    final = base_path / str(version)
    staging.rename(final)
    return final


class ModelServer:
    """A running model server: ``port``, ``target``, ``rest_port``, ``rest_url``, ``stop()``.

    Also a context manager. ``rest_port`` is 0 unless the REST API is on.
    """

    def __init__(
        self, process: subprocess.Popen[str], host: str, log_path: Path, *, rest: bool = False
    ) -> None:
        """Wrap ``process``; ports are known once :meth:`wait_ready` has seen the lines.

        With ``rest``, ready means both the gRPC and the REST line were printed.
        """
        self.process = process
        self.host = host
        self.port = 0
        self.rest_port = 0
        self.rest = rest
        self.log_path = log_path
        self.stdout_lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

    @property
    def target(self) -> str:
        """The gRPC target, ``HOST:PORT`` (default host 127.0.0.1)."""
        return f"{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """The REST API's base URL, ``http://HOST:PORT`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.rest_port}"

    def _read_stdout(self) -> None:
        """Collect stdout lines (so the pipe never fills) and spot the listening lines."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stdout_lines.append(line.rstrip("\n"))
            port = int(line.strip().rsplit(":", 1)[1]) if "listening on" in line else 0
            if line.startswith(LISTENING) and not self.port:
                self.port = port
            elif line.startswith(REST_LISTENING) and not self.rest_port:
                self.rest_port = port
            if self.port and (self.rest_port or not self.rest):
                self._ready.set()

    def wait_ready(self, timeout: float) -> None:
        """Block until the server printed its listening line; raise with its log otherwise."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                code = self.process.poll()
                self.stop()
                why = f"exited with {code}" if code is not None else f"not ready after {timeout}s"
                raise RuntimeError(f"model server {why}; stderr:\n{self.logs()[-4000:]}")

    def logs(self) -> str:
        """Everything the server wrote to stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int:
        """Send SIGTERM, wait up to ``timeout`` s (then SIGKILL); return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(2)
        return int(self.process.returncode)

    def __iter__(self) -> Iterator[object]:
        """Unpack as ``(process, port)``."""
        return iter((self.process, self.port))

    def __enter__(self) -> ModelServer:
        """Return self; the server is already running."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()


ModelServerHandle = ModelServer  # the name the brief used; same class


def _flag_value(args: Sequence[str], flag: str) -> str | None:
    """The value of ``flag`` in ``args`` (``--flag V`` or ``--flag=V``), or None."""
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def server_command(args: Sequence[str], host: str, python: str | None = None) -> list[str]:
    """``python -m adapter.modelserver.server --host HOST [--port 0] ARGS``."""
    command = [python or sys.executable, "-m", "adapter.modelserver.server", "--host", host]
    if not any(a == "--port" or a.startswith("--port=") for a in args):
        command += ["--port", "0"]  # the server binds a free port and reports it: no race
    return command + list(args)


def start_model_server(
    args: Sequence[str],
    timeout: float = 60.0,
    *,
    host: str = "127.0.0.1",
    python: str | None = None,
    env: Mapping[str, str] | None = None,
    rest: bool = False,
    nice: int = 0,
) -> ModelServer:
    """Start ``python -m adapter.modelserver.server ARGS`` and wait for it to listen.

    Without ``--port`` in ``args`` the server picks a free port itself (``--port 0``).
    ``rest=True`` turns the REST API on at a free port (``--rest_api_port``; the
    handle's ``rest_port``/``rest_url``); a ``--rest_api_port N`` in ``args``
    does the same at N. ``python`` defaults to this interpreter; ``env`` is
    added to the environment, and the repository root is put on PYTHONPATH;
    ``nice`` lowers its CPU priority (by ``nice -n``), for a test of the adapter
    alone on a machine the model's arithmetic would otherwise share evenly.
    stderr goes to a temp file (``handle.logs()``), deleted when this process
    exits. Raises RuntimeError if it exits or is not ready within ``timeout``
    seconds (default 60).
    """
    given = _flag_value(args, "--rest_api_port")
    pick_port = rest and given is None
    for attempt in range(3):
        extra = ["--rest_api_port", str(free_port(host))] if pick_port else []
        try:
            return _start(
                [*args, *extra], timeout, host, python, env, rest or given not in (None, "0"),
                nice,
            )  # fmt: skip
        except RuntimeError as exc:  # another process took the free port first: pick again
            if not (pick_port and REST_BIND_FAILED in str(exc)) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start(
    args: Sequence[str],
    timeout: float,
    host: str,
    python: str | None,
    env: Mapping[str, str] | None,
    rest: bool,
    nice: int,
) -> ModelServer:
    """Spawn one server process and wait until it is ready."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), environment.get("PYTHONPATH", "")) if p
    )
    fd, log_name = tempfile.mkstemp(prefix="model-server-", suffix=".log")
    with os.fdopen(fd, "w") as log_file:
        command = server_command(args, host, python)
        process = subprocess.Popen(
            ["nice", "-n", str(nice), *command] if nice else command,
            stdout=subprocess.PIPE,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
            text=True,
            env=environment,
            cwd=str(REPO_ROOT),
        )
    _LOG_FILES.append(Path(log_name))
    handle = ModelServer(process, host, Path(log_name), rest=rest)
    handle.wait_ready(timeout)
    return handle
