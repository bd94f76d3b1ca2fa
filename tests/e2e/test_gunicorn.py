"""The adapter under real gunicorn: bad uploads never take a worker down."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import psutil
import pytest
import requests

from adapter.local import adapter_command, spawn, stop, wait_for_http
from adapter.modelserver.demo_models.canvas import make_canvas
from adapter.modelserver.testing import ModelServer, free_port
from tests.helpers import encode


@pytest.fixture(scope="module")
def gunicorn_url(model_server: ModelServer) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "ADAPTER_TFS_TARGET": model_server.target}
    process = spawn(adapter_command(port, workers=1), env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/readyz", [process], timeout_s=60)
        yield url
    finally:
        assert stop(process) == 0


def _workers(url: str) -> set[int]:
    port = int(url.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return {child.pid for child in psutil.Process(conn.pid).children()}
    return set()


def test_bad_uploads_get_4xx_and_the_worker_keeps_serving(gunicorn_url: str) -> None:
    good = encode(make_canvas(np.random.default_rng(8), 800, 600).image, "JPEG")
    workers = _workers(gunicorn_url)
    detect = f"{gunicorn_url}/v1/models/digits/detect"
    bad_uploads = [
        b"",
        b"not an image at all",
        good[: len(good) // 2],
        b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
    ]
    for data in bad_uploads * 3:
        response = requests.post(detect, files={"image": ("x", data)}, timeout=10)
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["Content-Type"] == "application/problem+json"
        assert "Traceback" not in response.text
    response = requests.post(detect, files={"image": ("x.jpg", good)}, timeout=10)
    assert response.status_code == 200
    assert response.json()["detections"]
    assert _workers(gunicorn_url) == workers  # no worker died and was replaced
