"""Prometheus metrics in one process (the Flask test client): what a scrape of ``/metrics`` shows.

Every value is read from a real ``GET /metrics`` answer, parsed with
prometheus-client's own parser. The metrics are process-wide, so each test
compares a value before and after its requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from flask.testing import FlaskClient
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from adapter import exceptions, metrics
from adapter.app import create_app
from adapter.config import load_settings
from adapter.modelserver.testing import ModelServer, free_port
from adapter.serving.backend import Backend
from adapter.serving.resilience import CircuitBreaker, Deadline
from adapter.serving.servable import RpcFailure
from tests.helpers import assert_problem, upload
from tests.unit.serving.test_resilience import ANSWER, INPUTS, MODEL, FakeTransport

DIGITS = Path(metrics.__file__).parent / "demo" / "samples" / "digits.jpg"
DETECT = "/v1/models/<model>/detect"


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return DIGITS.read_bytes()


def scrape(client: FlaskClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a ``GET /metrics`` answer: (name, labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_detect_is_counted_by_route_model_method_and_status(
    client: FlaskClient, jpeg: bytes
) -> None:
    labels = {"route": DETECT, "model": "digits", "method": "POST", "status": "200"}
    before = scrape(client)
    for _ in range(2):
        assert client.post("/v1/models/digits/detect", data=upload(jpeg)).status_code == 200
    after = scrape(client)
    name = "tfs_adapter_requests_total"
    assert value(after, name, **labels) == value(before, name, **labels) + 2
    # The scrape before is counted too, under its own route.
    scrapes = {"route": "/metrics", "model": "", "method": "GET", "status": "200"}
    assert value(after, name, **scrapes) >= value(before, name, **scrapes) + 1


def test_a_detect_is_timed_whole_and_step_by_step(client: FlaskClient, jpeg: bytes) -> None:
    before = scrape(client)
    response = client.post("/v1/models/digits/detect", data=upload(jpeg))
    assert response.status_code == 200
    after = scrape(client)
    whole = "tfs_adapter_request_duration_seconds"
    route = {"route": DETECT, "model": "digits"}
    assert value(after, f"{whole}_count", **route) == value(before, f"{whole}_count", **route) + 1
    assert value(after, f"{whole}_sum", **route) > value(before, f"{whole}_sum", **route)
    # The step histograms get the times the Server-Timing header reports.
    timing = {
        part.split(";dur=")[0]: float(part.split(";dur=")[1])
        for part in response.headers["Server-Timing"].split(", ")
    }
    for step in ("decode", "inference", "mapping"):
        name = f"tfs_adapter_{step}_duration_seconds"
        assert value(after, f"{name}_count", model="digits") == (
            value(before, f"{name}_count", model="digits") + 1
        )
        added = value(after, f"{name}_sum", model="digits") - value(
            before, f"{name}_sum", model="digits"
        )
        assert added == pytest.approx(timing[step] / 1000, abs=1e-6)
    # Buckets from half a millisecond: a fast step still lands in a useful bucket.
    assert value(after, f"{whole}_bucket", le="0.0005", **route) <= value(
        after, f"{whole}_count", **route
    )
    assert (
        "tfs_adapter_decode_duration_seconds_bucket",
        frozenset({("model", "digits"), ("le", "0.0005")}),
    ) in after


def test_labels_are_bounded_rules_and_registry_names(client: FlaskClient, jpeg: bytes) -> None:
    before = scrape(client)
    assert_problem(client.post("/v1/models/no-such-model/detect", data=upload(jpeg)), 404)
    assert_problem(client.get("/no/such/path/12345"), 404)
    assert client.open("/healthz", method="BREW").status_code == 405
    after = scrape(client)
    name = "tfs_adapter_requests_total"
    unknown = {"route": DETECT, "model": "", "method": "POST", "status": "404"}
    assert value(after, name, **unknown) == value(before, name, **unknown) + 1
    unmatched = {"route": metrics.UNMATCHED, "model": "", "method": "GET", "status": "404"}
    assert value(after, name, **unmatched) == value(before, name, **unmatched) + 1
    odd = {"route": metrics.UNMATCHED, "model": "", "method": "OTHER", "status": "405"}
    assert value(after, name, **odd) == value(before, name, **odd) + 1
    label_values = {v for (sample, labels) in after if sample == name for _, v in labels}
    assert not any("no-such" in v or "12345" in v or "BREW" in v for v in label_values)


def test_nothing_is_in_flight_between_requests(client: FlaskClient, jpeg: bytes) -> None:
    client.post("/v1/models/digits/detect", data=upload(jpeg))
    # The scrape answering is not counted: an idle service reads 0.
    assert value(scrape(client), "tfs_adapter_requests_in_flight") == 0


def test_metrics_stay_open_when_api_keys_are_on(settings_env: dict[str, str]) -> None:
    app = create_app(load_settings({**settings_env, "ADAPTER_API_KEYS": "s3cret-key-for-metrics"}))
    client = app.test_client()
    assert_problem(client.get("/v1/models"), 401)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "s3cret" not in response.get_data(as_text=True)


@pytest.fixture()
def settings_env(model_server: ModelServer) -> dict[str, str]:
    return {"ADAPTER_TFS_TARGET": model_server.target}


@pytest.fixture()
def down_client() -> Iterator[FlaskClient]:
    """An app whose model server is not there, opening its breaker after 2 failures."""
    env = {
        "ADAPTER_TFS_TARGET": f"127.0.0.1:{free_port()}",
        "ADAPTER_BREAKER_FAILURES": "2",
        "ADAPTER_BREAKER_COOLDOWN_S": "30",
        "ADAPTER_RETRY_ATTEMPTS": "1",
    }
    yield create_app(load_settings(env)).test_client()
    # The gauge is per backend name and process: leave "grpc" as the healthy apps left it.
    metrics.breaker_state("grpc", "closed")


def test_backend_errors_by_code_and_the_breaker_opening(
    down_client: FlaskClient, jpeg: bytes
) -> None:
    errors_ = "tfs_adapter_backend_errors_total"
    labels = {"backend": "grpc", "servable": "digit_detector", "code": "UNAVAILABLE"}
    before = scrape(down_client)
    for _ in range(2):
        response = down_client.post("/v1/models/digits/detect", data=upload(jpeg))
        assert_problem(response, 503, "backend-unavailable")
        after = scrape(down_client)
        assert value(after, "tfs_adapter_circuit_breaker_state", backend="grpc") in (0, 2)
    assert value(after, errors_, **labels) == value(before, errors_, **labels) + 2
    assert value(after, "tfs_adapter_circuit_breaker_state", backend="grpc") == 2  # open
    # Open: the next call fails at once, without calling the backend (no new backend error).
    assert_problem(down_client.post("/v1/models/digits/detect", data=upload(jpeg)), 503)
    final = scrape(down_client)
    assert value(final, errors_, **labels) == value(after, errors_, **labels)
    status = {"route": DETECT, "model": "digits", "method": "POST", "status": "503"}
    name = "tfs_adapter_requests_total"
    assert value(final, name, **status) == value(before, name, **status) + 3


def test_the_breaker_gauge_follows_closed_open_half_open_closed(client: FlaskClient) -> None:
    """A scripted transport (see test_resilience): fails twice, answers after the cooldown."""
    seen: list[str] = []
    down = RpcFailure(grpc.StatusCode.UNAVAILABLE, "connection refused")
    backend = Backend(
        "metrics-test",
        FakeTransport(down, down, ANSWER),
        breaker=CircuitBreaker(failure_threshold=2, cooldown_s=0.2),
    )
    backend.retry = type(backend.retry)(max_attempts=1)
    recording = backend.breaker.on_change
    assert recording is not None

    def listen(state: str) -> None:
        seen.append(state)
        recording(state)

    backend.breaker.on_change = listen
    gauge = "tfs_adapter_circuit_breaker_state"
    assert value(scrape(client), gauge, backend="metrics-test") == 0
    for _ in range(2):
        with pytest.raises(exceptions.BackendUnavailable):
            backend.predict(MODEL, INPUTS, output_filter=(), deadline=Deadline(5))
    assert value(scrape(client), gauge, backend="metrics-test") == 2
    time.sleep(0.25)
    assert backend.predict(MODEL, INPUTS, output_filter=(), deadline=Deadline(5)) is ANSWER
    assert seen == ["open", "half_open", "closed"]
    assert value(scrape(client), gauge, backend="metrics-test") == 0
    codes = scrape(client)
    assert (
        value(
            codes,
            "tfs_adapter_backend_errors_total",
            backend="metrics-test",
            servable=MODEL.name,
            code="UNAVAILABLE",
        )
        == 2
    )


def test_worker_exited_is_harmless_in_one_process() -> None:
    metrics.worker_exited(12345, None)  # no PROMETHEUS_MULTIPROC_DIR: nothing to clean up
