"""Upload limits under real gunicorn, where a chunked body has no Content-Length."""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapter.local import adapter_command, spawn, stop, wait_for_http
from adapter.modelserver.testing import ModelServer, free_port

LIMIT = 256 * 1024
SEVEN = (Path(__file__).resolve().parents[2] / "adapter/demo/samples/seven.png").read_bytes()


@pytest.fixture(scope="module")
def small_limit_port(model_server: ModelServer) -> Iterator[int]:
    port = free_port()
    env = {
        **os.environ,
        "ADAPTER_TFS_TARGET": model_server.target,
        "ADAPTER_MAX_UPLOAD_BYTES": str(LIMIT),
    }
    process = spawn(adapter_command(port, workers=1), env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", [process], timeout_s=60)
        yield port
    finally:
        assert stop(process) == 0


def _post_chunked(port: int, content_type: str, chunks: list[bytes]) -> tuple[int, str, bytes]:
    """POST with ``Transfer-Encoding: chunked`` (no Content-Length); status, type, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("POST", "/v1/models/digit-classes/classify")
        connection.putheader("Content-Type", content_type)
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        try:
            for chunk in chunks:
                connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and stopped reading: the answer is still there
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("content_type", ["image/png", "application/json"])
def test_a_chunked_body_over_the_limit_is_a_413(small_limit_port: int, content_type: str) -> None:
    chunks = [b"\x89PNG" + b"\0" * 65532] * (2 * LIMIT // 65536)
    status, media_type, body = _post_chunked(small_limit_port, content_type, chunks)
    assert status == 413
    assert media_type == "application/problem+json"
    problem = json.loads(body)
    assert problem["type"].endswith("/payload-too-large")
    assert problem["status"] == 413


def test_a_chunked_multipart_body_over_the_limit_is_a_413(small_limit_port: int) -> None:
    boundary = b"limit-boundary"
    head = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="a.png"'
        b"\r\nContent-Type: image/png\r\n\r\n"
    )
    chunks = [head] + [b"\0" * 65536] * (2 * LIMIT // 65536)
    status, media_type, body = _post_chunked(
        small_limit_port, f"multipart/form-data; boundary={boundary.decode()}", chunks
    )
    assert status == 413
    assert media_type == "application/problem+json"
    assert json.loads(body)["type"].endswith("/payload-too-large")


def test_a_chunked_body_under_the_limit_is_answered(small_limit_port: int) -> None:
    chunks = [SEVEN[i : i + 1000] for i in range(0, len(SEVEN), 1000)]
    status, media_type, body = _post_chunked(small_limit_port, "image/png", chunks)
    assert status == 200, body
    assert media_type == "application/json"
    assert json.loads(body)["classifications"][0]["label"] == "7"
