"""Traces through real gunicorn: one request, one trace, its spans, and the model server's metadata.

The workers run the real SDK (``OTEL_TRACES_EXPORTER=none``: on, nothing
exported) with the SDK's in-memory exporter added by
``tests/e2e/tracing_gunicorn_conf.py``, which writes each worker's spans to
a file when it exits.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from adapter.local import spawn, stop, wait_for_http
from adapter.modelserver.testing import ModelServer, free_port
from tests.e2e.backends import SAMPLES

DIGITS = (SAMPLES / "digits.jpg").read_bytes()
CONFIG = Path(__file__).with_name("tracing_gunicorn_conf.py")
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@dataclass
class Traced:
    """What one run of the adapter left: its spans, its log, the model server's log."""

    spans: list[dict[str, Any]]
    log: str
    model_server_log: str


@pytest.fixture(scope="module")
def traced(model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    """Two detects (one continuing a caller's trace, one not) and a health check, then a stop."""
    root = tmp_path_factory.mktemp("tracing")
    spans_dir = root / "spans"
    spans_dir.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "ADAPTER_TFS_TARGET": model_server.target,
        "OTEL_TRACES_EXPORTER": "none",
        "TEST_SPANS_DIR": str(spans_dir),
    }
    command = [
        sys.executable, "-m", "gunicorn", "-c", str(CONFIG),
        "--bind", f"127.0.0.1:{port}", "--workers", "1",
    ]  # fmt: skip
    log_path = root / "gunicorn.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as sink:
        process = spawn(command, env, output=sink)
        try:
            wait_for_http(f"{url}/readyz", [process], timeout_s=60)
            answer = requests.post(
                f"{url}/v1/models/digits/detect",
                files={"image": ("digits.jpg", DIGITS)},
                headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
                timeout=30,
            )
            assert answer.status_code == 200
            fresh = requests.post(
                f"{url}/v1/models/digits/detect", files={"image": ("d.jpg", DIGITS)}, timeout=30
            )
            assert fresh.status_code == 200
        finally:
            assert stop(process) == 0
    spans = [span for path in spans_dir.glob("*.json") for span in json.loads(path.read_text())]
    yield Traced(spans, log_path.read_text(encoding="utf-8"), model_server.logs())


def _trace(traced: Traced, trace_id: str) -> dict[str, dict[str, Any]]:
    return {span["name"]: span for span in traced.spans if span["trace_id"] == trace_id}


def test_a_request_is_one_trace_with_decode_predict_and_mapping_spans(traced: Traced) -> None:
    spans = _trace(traced, CALLER_TRACE)
    server = spans["POST /v1/models/<model>/detect"]
    assert server["kind"] == "SERVER"
    assert server["parent_id"] == CALLER_SPAN  # it continues the caller's trace
    assert server["attributes"]["http.response.status_code"] == 200
    assert server["attributes"]["http.route"] == "/v1/models/<model>/detect"
    for phase in ("decode", "predict", "mapping"):
        assert spans[phase]["parent_id"] == server["span_id"], phase
    call = spans["tensorflow.serving/Predict"]
    assert (call["kind"], call["parent_id"]) == ("CLIENT", spans["predict"]["span_id"])
    assert call["attributes"]["tfs.model"] == "digit_detector"  # the servable
    # Nothing else: readiness checks in the background start no trace of their own.
    assert set(spans) == {server["name"], "decode", "predict", "mapping", call["name"]}


def test_the_model_server_sees_the_trace_in_its_grpc_metadata(traced: Traced) -> None:
    call = _trace(traced, CALLER_TRACE)["tensorflow.serving/Predict"]
    assert f"traceparent=00-{CALLER_TRACE}-{call['span_id']}-01" in traced.model_server_log


def test_a_request_without_a_traceparent_starts_its_own_trace_named_in_its_log_line(
    traced: Traced,
) -> None:
    access = [
        json.loads(line)
        for line in traced.log.splitlines()
        if line.startswith("{") and '"path": "/v1/models/digits/detect"' in line
    ]
    assert access[0]["trace_id"] == CALLER_TRACE
    fresh = access[1]["trace_id"]
    assert fresh != CALLER_TRACE and len(fresh) == 32
    assert _trace(traced, fresh)["POST /v1/models/<model>/detect"]["parent_id"] is None
    assert len({span["trace_id"] for span in traced.spans if span["kind"] == "SERVER"}) >= 2
