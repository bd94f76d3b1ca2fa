"""What an operator reads under real gunicorn: request ids in the app's log lines, never a key."""

from __future__ import annotations

import os
import re
from pathlib import Path

import requests

from adapter.local import adapter_command, spawn, stop, wait_for_http
from adapter.modelserver.testing import free_port
from tests.e2e.backends import SAMPLES

KEY = "gunicorn-log-key-5d1f0c9a7e3b"
WRONG_KEY = "gunicorn-log-key-5d1f0c9a7e3c"
DIGITS = (SAMPLES / "digits.jpg").read_bytes()


def test_log_lines_carry_the_request_id_and_never_the_key(tmp_path: Path) -> None:
    # Nothing listens at the model server's address: detect fails and logs why.
    env = {
        **os.environ,
        "ADAPTER_TFS_TARGET": f"127.0.0.1:{free_port()}",
        "ADAPTER_API_KEYS": KEY,
        "ADAPTER_LOG_LEVEL": "DEBUG",
        "ADAPTER_LOG_FORMAT": "text",  # the regexes below read text lines
        # Listing every demo model must not open the circuit before detect logs its failure.
        "ADAPTER_BREAKER_FAILURES": "100",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    output = tmp_path / "gunicorn.log"
    with output.open("wb") as sink:
        process = spawn(adapter_command(port, workers=1), env, output=sink)
        try:
            wait_for_http(f"{url}/healthz", [process], timeout_s=60)
            listed = requests.get(
                f"{url}/v1/models",
                headers={"Authorization": f"Bearer {KEY}", "X-Request-ID": "e2e-models-1"},
                timeout=10,
            )
            failed = requests.post(
                f"{url}/v1/models/digits/detect",
                files={"image": ("digits.jpg", DIGITS)},
                headers={"X-API-Key": KEY, "X-Request-ID": "e2e-detect-2"},
                timeout=10,
            )
            refused = requests.get(
                f"{url}/v1/models",
                headers={"X-API-Key": WRONG_KEY, "X-Request-ID": "e2e-wrong-3"},
                timeout=10,
            )
        finally:
            assert stop(process) == 0
    assert listed.status_code == 200
    assert listed.headers["X-Request-ID"] == "e2e-models-1"
    assert failed.status_code == 503
    assert failed.json()["request_id"] == failed.headers["X-Request-ID"] == "e2e-detect-2"
    assert refused.status_code == 401
    assert refused.headers["X-Request-ID"] == "e2e-wrong-3"

    text = output.read_text(encoding="utf-8", errors="replace")
    # GET /v1/models asks the (missing) server for each model's state and logs the failures too.
    failures = re.findall(
        r"^WARNING adapter\.serving\.backend request_id=(\S+) trace_id=- .*call for (\w+) failed",
        text,
        re.M,
    )
    assert ("e2e-detect-2", "digit_detector") in failures, text[-3000:]
    assert {request_id for request_id, _ in failures} <= {"e2e-models-1", "e2e-detect-2"}
    assert re.search(
        r"^INFO adapter\.api\.auth request_id=e2e-wrong-3 trace_id=- rejected", text, re.M
    )
    assert KEY not in text
    assert WRONG_KEY not in text
