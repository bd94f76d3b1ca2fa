"""Real faults of a real model server, and what the adapter's callers see.

Each test runs its own model server process and breaks it for real: stopped,
frozen with SIGSTOP, restarted during a burst, a version directory removed.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapter.modelserver.testing import ModelServer, free_port
from tests.e2e.backends import (
    CLASSIFIER,
    adapter_client,
    classify_seven,
    copy_model,
    model_config,
    serve,
)
from tests.helpers import assert_problem


class Backend:
    """A model server serving digit_classifier (versions 1 and 2) on a fixed port."""

    def __init__(self, root: Path, demo_models_dir: Path) -> None:
        self.base = copy_model(
            demo_models_dir, "digit_classifier", root / "models" / "digit_classifier", [1, 2]
        )
        self.config = model_config(root / "models.config", {"digit_classifier": self.base})
        self.port = free_port()
        self.server: ModelServer = serve(self.config, port=self.port)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def restart(self) -> None:
        self.server.stop()
        self.server = serve(self.config, port=self.port)


@pytest.fixture()
def backend(tmp_path: Path, demo_models_dir: Path) -> Iterator[Backend]:
    handle = Backend(tmp_path, demo_models_dir)
    yield handle
    handle.server.process.send_signal(signal.SIGCONT)  # in case a test froze it
    handle.server.stop()


def test_a_stopped_server_is_a_fast_503_then_the_breaker_opens_and_lets_one_probe_through(
    tmp_path: Path, backend: Backend
) -> None:
    env = {"ADAPTER_BREAKER_FAILURES": "3", "ADAPTER_BREAKER_COOLDOWN_S": "1.5"}
    client = adapter_client(tmp_path, CLASSIFIER, backend.target, env)
    assert classify_seven(client).status_code == 200
    backend.server.stop()
    for _ in range(3):
        start = time.monotonic()
        response = classify_seven(client)
        assert time.monotonic() - start < 1.5  # retried briefly, never the 5 s deadline
        assert_problem(response, 503, "backend-unavailable")
        assert response.headers["Retry-After"] == "1"
    start = time.monotonic()
    opened = classify_seven(client)
    assert time.monotonic() - start < 0.1  # the backend was not called
    assert_problem(opened, 503, "backend-circuit-open")
    assert opened.headers["Retry-After"] in ("1", "2")
    assert client.get("/readyz").get_json()["errors"]["models"]["seven"]["circuit"] == "open"
    time.sleep(1.6)
    probe = classify_seven(client)  # the one call let through after the cool-down
    assert_problem(probe, 503, "backend-unavailable")
    assert_problem(classify_seven(client), 503, "backend-circuit-open")  # open again

    backend.server = serve(backend.config, port=backend.port)
    deadline = time.monotonic() + 20
    statuses: list[int] = []
    while time.monotonic() < deadline:
        statuses.append(classify_seven(client).status_code)
        if statuses[-1] == 200:
            break
        time.sleep(0.2)
    assert statuses[-1] == 200, statuses
    assert set(statuses) <= {200, 503}
    assert client.get("/readyz").status_code == 200


def test_a_frozen_server_is_a_504_at_the_deadline_the_request_asked_for(
    tmp_path: Path, backend: Backend
) -> None:
    client = adapter_client(tmp_path, CLASSIFIER, backend.target)
    assert classify_seven(client).status_code == 200
    backend.server.process.send_signal(signal.SIGSTOP)
    try:
        start = time.monotonic()
        response = classify_seven(client, headers={"X-Request-Timeout-Ms": "700"})
        elapsed = time.monotonic() - start
        assert_problem(response, 504, "backend-timeout")
        assert 0.6 < elapsed < 1.5
    finally:
        backend.server.process.send_signal(signal.SIGCONT)
    assert classify_seven(client).status_code == 200


def test_a_request_can_only_shorten_the_models_deadline(tmp_path: Path, backend: Backend) -> None:
    registry = CLASSIFIER.replace(
        "background_class: 0", "background_class: 0\n    deadline_ms: 600"
    )
    client = adapter_client(tmp_path, registry, backend.target)
    assert classify_seven(client).status_code == 200
    backend.server.process.send_signal(signal.SIGSTOP)
    try:
        start = time.monotonic()
        response = classify_seven(client, headers={"X-Request-Timeout-Ms": "5000"})
        assert_problem(response, 504, "backend-timeout")
        assert 0.5 < time.monotonic() - start < 1.4
    finally:
        backend.server.process.send_signal(signal.SIGCONT)


@pytest.mark.slow
def test_the_adapter_recovers_when_the_server_restarts_during_a_burst(
    tmp_path: Path, backend: Backend
) -> None:
    env = {"ADAPTER_BREAKER_COOLDOWN_S": "1"}
    client_app = adapter_client(tmp_path, CLASSIFIER, backend.target, env).application
    stop = threading.Event()
    results: list[tuple[float, int, str]] = []
    lock = threading.Lock()

    def send() -> None:
        client = client_app.test_client()
        while not stop.is_set():
            response = classify_seven(client)
            problem = "" if response.status_code == 200 else response.get_json()["type"]
            with lock:
                results.append((time.monotonic(), response.status_code, problem))
            if problem:
                time.sleep(0.05)  # a client backing off, not a busy loop

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        backend.restart()
        restarted = time.monotonic()  # the new server is listening
        time.sleep(6.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    statuses = Counter(status for _, status, _ in results)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0  # the restart was noticed
    # Within gRPC's reconnect backoff (at most 2 s, +20% jitter) and the
    # breaker's cool-down (1 s) after the new server listens:
    settled = [status for at, status, _ in results if at > restarted + 4.0]
    timeline = [(round(at - restarted, 2), status) for at, status, _ in results[-400:]]
    assert settled and set(settled) == {200}, (statuses, timeline)
    kinds = {problem for _, status, problem in results if status == 503}
    assert all(kind.rsplit("/", 1)[-1] in ("backend-unavailable", "backend-circuit-open")
               for kind in kinds), kinds  # fmt: skip


def test_a_removed_version_is_404_when_the_request_chose_it_and_503_when_the_registry_did(
    tmp_path: Path, backend: Backend
) -> None:
    choosing = CLASSIFIER.replace(
        "serving: {name: digit_classifier}",
        "serving: {name: digit_classifier, allow_versions: [1, 2]}",
    )
    pinned = CLASSIFIER.replace(
        "serving: {name: digit_classifier}", "serving: {name: digit_classifier, version: 2}"
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    chooser = adapter_client(tmp_path / "a", choosing, backend.target)
    pinner = adapter_client(tmp_path / "b", pinned, backend.target)
    assert classify_seven(chooser, "?version=2").get_json()["model"]["version"] == 2
    assert classify_seven(pinner).get_json()["model"]["version"] == 2
    shutil.rmtree(backend.base / "2")
    deadline = time.monotonic() + 15
    while classify_seven(chooser, "?version=2").status_code == 200:
        assert time.monotonic() < deadline, "version 2 was never unloaded"
        time.sleep(0.2)
    assert_problem(classify_seven(chooser, "?version=2"), 404, "model-version-not-found")
    assert classify_seven(chooser, "?version=1").get_json()["model"]["version"] == 1
    gone = classify_seven(pinner)
    assert_problem(gone, 503, "model-not-served")
    assert "Retry-After" in gone.headers
    ready = pinner.get("/readyz")
    assert_problem(ready, 503, "not-ready")
    assert ready.get_json()["errors"]["models"]["seven"]["ready"] is False
