"""SIGTERM to real gunicorn: requests in flight finish with 200, new ones are refused, exit 0."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from adapter.local import adapter_command, spawn, wait_for_http
from adapter.modelserver.testing import ModelServer, free_port
from tests.e2e.backends import SAMPLES

GRACEFUL_TIMEOUT_S = 20
IN_FLIGHT = 4
BATCH = 16
HELD_S = 1.0  # how long after SIGTERM each in-flight upload still trickles in
DIGITS = (SAMPLES / "digits.jpg").read_bytes()


def _batch_body(boundary: str) -> bytes:
    """A multipart batch of :data:`BATCH` images (1.6 MB: decoding and inference take a while)."""
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="d.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + DIGITS + b"\r\n"  # fmt: skip
    return part * BATCH + f"--{boundary}--\r\n".encode()


class SlowUpload(threading.Thread):
    """A detect request whose body arrives in two parts; the second after :attr:`release`."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.sent_first_part = threading.Event()
        self.release = threading.Event()
        self.status = 0
        self.body = b""
        self.error: BaseException | None = None

    def run(self) -> None:
        boundary = uuid.uuid4().hex
        body = _batch_body(boundary)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.putrequest("POST", "/v1/models/digits/detect")
            connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders()
            connection.send(body[: len(body) // 2])
            self.sent_first_part.set()
            self.release.wait(60)
            connection.send(body[len(body) // 2 :])
            response = connection.getresponse()
            self.status, self.body = response.status, response.read()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            connection.close()


def _connect(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_sigterm_lets_requests_in_flight_finish_and_exits_0(
    model_server: ModelServer, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ADAPTER_TFS_TARGET": model_server.target,
        "ADAPTER_GRACEFUL_TIMEOUT_S": str(GRACEFUL_TIMEOUT_S),
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    process = spawn(adapter_command(port, workers=2), env, output=log)
    uploads = [SlowUpload(port) for _ in range(IN_FLIGHT)]
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", [process], timeout_s=60)
        for upload in uploads:
            upload.start()
        for upload in uploads:
            assert upload.sent_first_part.wait(30)
        time.sleep(0.5)  # every worker thread is now reading its request's body

        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(0.3)  # the master and the workers have closed their listening sockets
        with pytest.raises(ConnectionRefusedError):
            _connect(port)
        assert process.poll() is None, "gunicorn exited with requests in flight"
        time.sleep(max(0.0, HELD_S - (time.monotonic() - signalled)))
        for upload in uploads:
            upload.release.set()
        for upload in uploads:
            upload.join(30)
        returncode = process.wait(GRACEFUL_TIMEOUT_S)
        stopped_after = time.monotonic() - signalled
    finally:
        for upload in uploads:
            upload.release.set()
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()

    output = (tmp_path / "gunicorn.log").read_text(errors="replace")
    for upload in uploads:
        assert upload.error is None, repr(upload.error)
        assert upload.status == 200, upload.body[:500]
        results = json.loads(upload.body)["results"]
        assert len(results) == BATCH
        assert all(result["detections"] for result in results)
    assert returncode == 0, output[-3000:]
    assert HELD_S <= stopped_after < GRACEFUL_TIMEOUT_S
    with pytest.raises(ConnectionRefusedError):
        _connect(port)
