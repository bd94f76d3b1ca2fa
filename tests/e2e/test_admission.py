"""Admission control under real gunicorn: 48 clients on one worker get a 200 or a fast 503."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from adapter.modelserver.testing import start_model_server
from bench import loadclient
from tests.contract import check
from tests.e2e.backends import SAMPLES
from tests.helpers import adapter_under_gunicorn

DIGITS = (SAMPLES / "digits.jpg").read_bytes()
CLIENTS = 48
SECONDS = 8.0
DEADLINE_MS = 5000
PATH = "/v1/models/digits/detect"


@pytest.fixture(scope="module")
def one_worker(demo_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The adapter under gunicorn: one worker, the default 4 threads at work.

    Its model server stands in for TF Serving, which a deployment gives CPUs
    of its own (``deploy/``); here it would share this machine's few evenly
    with the adapter and the clients, and the refusals' latency measured
    would be the scheduler's turns between them and the model's arithmetic.
    So it runs at a lower priority: the model still answers as fast as the
    CPUs left allow, and what is measured is the adapter.
    """
    env = {"ADAPTER_DEADLINE_MS": str(DEADLINE_MS), "ADAPTER_LOG_LEVEL": "WARNING"}
    log = tmp_path_factory.mktemp("admission") / "gunicorn.log"
    with (
        start_model_server(["--models_dir", str(demo_models_dir)], nice=10) as server,
        adapter_under_gunicorn(server.target, env, log) as (url, _),
    ):
        yield url


def _refusals(url: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("tfs_adapter_requests_refused_total{")
    )


@pytest.mark.slow
def test_48_clients_on_one_worker_get_a_200_or_a_fast_503(one_worker: str) -> None:
    body, content_type = loadclient.multipart("image", "digits.jpg", DIGITS, "image/jpeg")
    request = loadclient.request_bytes(
        one_worker + PATH, body, headers={"Content-Type": content_type}
    )
    before = _refusals(one_worker)
    probes: list[tuple[int, float]] = []
    done = threading.Event()

    def probe() -> None:  # a liveness probe meanwhile: never refused, never slow
        while not done.wait(0.2):
            began = time.perf_counter()
            status = requests.get(f"{one_worker}/healthz", timeout=10).status_code
            probes.append((status, time.perf_counter() - began))

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        outcome = loadclient.run(one_worker, [request], CLIENTS, SECONDS, keep_body=25)
    finally:
        done.set()
        prober.join()
    assert probes and all(status == 200 for status, _ in probes), probes
    assert max(seconds for _, seconds in probes) < 1.0, probes
    assert not outcome.failures, outcome.failures[:3]  # no reset, no timeout
    assert set(outcome.statuses()) == {200, 503}, outcome.statuses()
    served = np.array([a.seconds for a in outcome.answers if a.status == 200])
    refused = [a for a in outcome.answers if a.status == 503]
    for answer in refused:
        assert answer.headers["retry-after"] == "1"
    for answer in outcome.answers:
        if answer.body:  # every 25th, checked against the contract
            check("POST", PATH, answer.status, answer.headers, answer.body)
            if answer.status == 503:
                assert b"/problems/overloaded" in answer.body
    refused_s = np.array([a.seconds for a in refused])
    summary = (
        f"{len(served)} served (p50 {np.median(served) * 1e3:.0f} ms, "
        f"p99 {np.percentile(served, 99) * 1e3:.0f} ms), {len(refused)} refused "
        f"(p50 {np.median(refused_s) * 1e3:.1f} ms, "
        f"p99 {np.percentile(refused_s, 99) * 1e3:.1f} ms)"
    )
    print(summary)
    assert np.percentile(refused_s, 99) < 0.05, summary
    assert np.percentile(served, 99) < DEADLINE_MS / 1000, summary
    # Each refusal is counted, by reason.
    assert _refusals(one_worker) - before == len(refused)
