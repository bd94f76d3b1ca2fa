"""``/metrics`` of a real gunicorn with 2 workers: one scrape shows what every worker counted.

Requests go over fresh connections (``Connection: close``), many at a time,
so the kernel hands them to both workers; each worker's own counts are read
from its file in ``PROMETHEUS_MULTIPROC_DIR`` to prove both served some.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from adapter.local import adapter_command, spawn, stop, wait_for_http
from adapter.modelserver.testing import ModelServer, free_port
from tests.contract import contract_session

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DIGITS = (ROOT / "adapter" / "demo" / "samples" / "digits.jpg").read_bytes()
DETECT = {"route": "/v1/models/<model>/detect", "model": "digits", "method": "POST"}
OK = {**DETECT, "status": "200"}


@dataclass
class Gunicorn:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    metrics_dir: Path

    def workers(self) -> set[int]:
        return {child.pid for child in psutil.Process(self.process.pid).children()}


@pytest.fixture(scope="module")
def gunicorn(
    model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gunicorn]:
    port = free_port()
    metrics_dir = tmp_path_factory.mktemp("metrics")
    env = {
        **os.environ,
        "ADAPTER_TFS_TARGET": model_server.target,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    process = spawn(adapter_command(port, workers=2), env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/readyz", [process], timeout_s=60)
        deadline = time.monotonic() + 30
        server = Gunicorn(url, port, process, metrics_dir)
        while len(server.workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(server.workers()) == 2
        yield server
    finally:
        assert stop(process) == 0


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """One ``GET /metrics`` (checked against openapi.yaml): (name, labels) -> value."""
    with contract_session() as session:
        response = session.get(f"{url}/metrics", headers={"Connection": "close"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def detects_by_worker(metrics_dir: Path) -> dict[int, float]:
    """Each process's own count of successful detects, read from its counter file."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        owner = path.stem.removeprefix("counter_")
        if not owner.isdigit():
            continue
        counts[int(owner)] = sum(
            sample.value
            for family in MultiProcessCollector.merge([str(path)])
            for sample in family.samples
            if sample.name == "tfs_adapter_requests_total" and sample.labels == OK
        )
    return counts


def detect_on_a_fresh_connection(url: str) -> int:
    response = requests.post(
        f"{url}/v1/models/digits/detect",
        data=DIGITS,
        headers={"Content-Type": "image/jpeg", "Connection": "close"},
        timeout=30,
    )
    return response.status_code


def test_one_scrape_counts_the_requests_of_both_workers(gunicorn: Gunicorn) -> None:
    workers = gunicorn.workers()
    before = value(scrape(gunicorn.url), "tfs_adapter_requests_total", **OK)
    sent = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(10):  # rounds until the kernel has given both workers some
            statuses = list(pool.map(detect_on_a_fresh_connection, [gunicorn.url] * 16))
            assert statuses == [200] * 16
            sent += len(statuses)
            served = {pid for pid, n in detects_by_worker(gunicorn.metrics_dir).items() if n}
            if workers <= served:
                break
    by_worker = detects_by_worker(gunicorn.metrics_dir)
    assert all(by_worker.get(pid, 0) > 0 for pid in workers), by_worker
    samples = scrape(gunicorn.url)
    assert value(samples, "tfs_adapter_requests_total", **OK) == before + sent
    assert sum(by_worker.values()) == before + sent  # the scrape is the sum of the workers
    histogram = "tfs_adapter_request_duration_seconds_count"
    assert value(samples, histogram, route=DETECT["route"], model="digits") == before + sent
    for step in ("decode", "inference", "mapping"):
        name = f"tfs_adapter_{step}_duration_seconds_count"
        assert value(samples, name, model="digits") == before + sent
    assert value(samples, "tfs_adapter_requests_in_flight") == 0
    assert value(samples, "tfs_adapter_circuit_breaker_state", backend="grpc") == 0


def test_a_request_is_reading_while_it_arrives_and_in_flight_only_once_it_has(
    gunicorn: Gunicorn,
) -> None:
    head = (
        "POST /v1/models/digits/detect HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{gunicorn.port}\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {len(DIGITS)}\r\nConnection: close\r\n\r\n"
    ).encode()
    half = len(DIGITS) // 2
    with socket.create_connection(("127.0.0.1", gunicorn.port), timeout=30) as conn:
        conn.sendall(head + DIGITS[:half])  # the worker's poller waits for the rest of the body
        deadline = time.monotonic() + 10
        while value(scrape(gunicorn.url), "tfs_adapter_requests_reading") != 1:
            assert time.monotonic() < deadline, "the half-sent request never showed as reading"
            time.sleep(0.05)
        assert value(scrape(gunicorn.url), "tfs_adapter_requests_in_flight") == 0  # no thread yet
        conn.sendall(DIGITS[half:])
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert value(scrape(gunicorn.url), "tfs_adapter_requests_in_flight") == 0
    assert value(scrape(gunicorn.url), "tfs_adapter_requests_reading") == 0


def test_a_dead_workers_counts_stay_and_its_live_gauges_go(gunicorn: Gunicorn) -> None:
    before = value(scrape(gunicorn.url), "tfs_adapter_requests_total", **OK)
    by_worker = detects_by_worker(gunicorn.metrics_dir)
    victim = max(gunicorn.workers(), key=lambda pid: by_worker.get(pid, 0))
    assert by_worker.get(victim, 0) > 0
    assert (gunicorn.metrics_dir / f"gauge_livesum_{victim}.db").exists()
    os.kill(victim, signal.SIGKILL)  # a crash: nothing in the worker cleans up
    deadline = time.monotonic() + 30
    while victim in gunicorn.workers() or len(gunicorn.workers()) < 2:
        assert time.monotonic() < deadline, "gunicorn did not replace the killed worker"
        time.sleep(0.1)
    wait_for_http(f"{gunicorn.url}/healthz", [gunicorn.process], timeout_s=30)
    # gunicorn's child_exit hook (adapter/gunicorn_conf.py) marked the worker dead.
    assert not list(gunicorn.metrics_dir.glob(f"gauge_live*_{victim}.db"))
    # Its counts were folded into one file for all dead workers; its own files are gone.
    assert not list(gunicorn.metrics_dir.glob(f"*_{victim}.db"))
    exited = json.loads((gunicorn.metrics_dir / "exited.json").read_text(encoding="utf-8"))
    folded = sum(
        value
        for name, labels, value in exited["families"]["tfs_adapter_requests"]["samples"]
        if name == "tfs_adapter_requests_total" and labels == OK
    )
    assert folded == by_worker[victim]
    samples = scrape(gunicorn.url)
    assert value(samples, "tfs_adapter_requests_total", **OK) == before
    assert value(samples, "tfs_adapter_requests_in_flight") == 0
