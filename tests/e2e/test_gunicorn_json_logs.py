"""Real gunicorn's logs: one JSON access line per request on stdout, JSON app lines on stderr,
never an API key, a query string or image bytes."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import requests
from PIL import Image

from adapter.accesslog import server_timing
from adapter.local import adapter_command, stop, wait_for_http
from adapter.modelserver.testing import ModelServer, free_port
from tests.e2e.backends import SAMPLES

KEY = "json-log-key-0c4e9b2a7d1f"
WRONG_KEY = "json-log-key-0c4e9b2a7d1e"
MARKER = b"IMAGE-BYTES-MARKER-5e7a1c"  # in the uploaded JPEG's comment segment
ACCESS_FIELDS = {
    "time", "request_id", "trace_id", "method", "path", "model", "status", "duration_ms",
    "bytes_in", "bytes_out", "user_agent", "decode_ms", "inference_ms", "mapping_ms", "annotate_ms",
}  # fmt: skip
APP_FIELDS = {"time", "level", "logger", "request_id", "trace_id", "message"}


def _marked_digits() -> bytes:
    buffer = io.BytesIO()
    Image.open(SAMPLES / "digits.jpg").save(buffer, "JPEG", quality=90, comment=MARKER)
    data = buffer.getvalue()
    assert MARKER in data
    return data


def _requests(url: str) -> list[requests.Response]:
    """Every kind of answer: open, keyed, refused, single, batch, annotated, query string."""
    image = _marked_digits()
    key = {"X-API-Key": KEY}
    detect = f"{url}/v1/models/digits/detect"
    with requests.Session() as session:
        session.headers["User-Agent"] = "json-logs-test/1.0"
        return [
            session.get(f"{url}/healthz", headers={"X-Request-ID": "json-health-1"}),
            session.get(
                f"{url}/v1/models",
                headers={"Authorization": f"Bearer {KEY}", "X-Request-ID": "json-models-2"},
            ),
            session.get(f"{url}/v1/models", headers={"X-API-Key": WRONG_KEY}),
            session.get(f"{url}/v1/models/digits?api_key={KEY}", headers=key),
            session.post(detect, files={"image": ("d.jpg", image)}, headers=key),
            session.post(detect, files=[("image", ("a.jpg", image))] * 2, headers=key),
            session.post(
                detect, files={"image": ("d.jpg", image)}, headers={**key, "Accept": "image/png"}
            ),
            session.post(
                f"{url}/v1/models/digit-classes/classify",
                data=iter([image]),  # chunked: no Content-Length
                headers={**key, "Content-Type": "image/jpeg"},
            ),
        ]


def test_access_and_app_lines_are_json_without_secrets(
    model_server: ModelServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "ADAPTER_TFS_TARGET": model_server.target,
        "ADAPTER_API_KEYS": KEY,
        "ADAPTER_LOG_LEVEL": "DEBUG",
    }
    env.pop("ADAPTER_LOG_FORMAT", None)  # the default: json
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            adapter_command(port, workers=1),
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            wait_for_http(f"{url}/readyz", [process], timeout_s=60)
            responses = _requests(url)
        finally:
            assert stop(process) == 0
    assert [r.status_code for r in responses] == [200, 200, 401, 200, 200, 200, 200, 200]

    access = [json.loads(line) for line in stdout.read_text().splitlines()]
    assert all(set(line) == ACCESS_FIELDS for line in access), access
    by_id = {line["request_id"]: line for line in access}
    for response in responses:
        _check_access_line(by_id[response.headers["X-Request-ID"]], response)
    assert by_id["json-models-2"]["status"] == 200
    assert len(access) == len(responses) + 1  # and /readyz

    app = [json.loads(line) for line in stderr.read_text().splitlines()]
    assert all(set(line) >= APP_FIELDS for line in app), app
    refused = responses[2].headers["X-Request-ID"]
    assert any(
        line["logger"] == "adapter.api.auth" and line["request_id"] == refused for line in app
    ), app
    assert any(line["message"].startswith("Booting worker") for line in app)

    raw = stdout.read_bytes() + stderr.read_bytes()
    for secret in (KEY.encode(), WRONG_KEY.encode(), MARKER, b"Bearer", b"api_key"):
        assert secret not in raw, secret


def _check_access_line(line: dict[str, Any], response: requests.Response) -> None:
    sent = response.request
    path = (sent.path_url or "").split("?")[0]
    assert line["method"] == sent.method
    assert line["path"] == path
    assert line["model"] == (path.split("/")[3] if path.startswith("/v1/models/") else None)
    assert line["status"] == response.status_code
    assert line["bytes_out"] == len(response.content)
    length = sent.headers.get("Content-Length")
    assert line["bytes_in"] == (int(length) if length else None)
    assert line["user_agent"] == "json-logs-test/1.0"
    assert 0 < line["duration_ms"] < 30_000
    timings = server_timing(response.headers.get("Server-Timing"))
    for name in ("decode", "inference", "mapping", "annotate"):
        assert line[f"{name}_ms"] == timings.get(name)
    if path.endswith(("/detect", "/classify")):
        assert line["inference_ms"] > 0
