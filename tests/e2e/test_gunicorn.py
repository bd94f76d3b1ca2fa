"""The adapter under real gunicorn: bad uploads never take a worker down."""

from __future__ import annotations

import numpy as np
import psutil
import requests

from adapter.modelserver.demo_models.canvas import make_canvas
from tests.helpers import encode


def _workers(url: str) -> set[int]:
    port = int(url.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return {child.pid for child in psutil.Process(conn.pid).children()}
    return set()


def test_bad_uploads_get_4xx_and_the_worker_keeps_serving(
    live_url: str, live_session: requests.Session
) -> None:
    good = encode(make_canvas(np.random.default_rng(8), 800, 600).image, "JPEG")
    workers = _workers(live_url)
    detect = f"{live_url}/v1/models/digits/detect"
    bad_uploads = [
        b"",
        b"not an image at all",
        good[: len(good) // 2],
        b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
    ]
    for data in bad_uploads * 3:
        response = live_session.post(detect, files={"image": ("x", data)}, timeout=10)
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["Content-Type"] == "application/problem+json"
        assert "Traceback" not in response.text
    response = live_session.post(detect, files={"image": ("x.jpg", good)}, timeout=10)
    assert response.status_code == 200
    assert response.json()["detections"]
    assert _workers(live_url) == workers  # no worker died and was replaced
