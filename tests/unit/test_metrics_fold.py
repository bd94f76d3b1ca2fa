"""Dead workers' metrics, folded: a scrape sums live and dead workers, and nothing counts twice.

Each "worker" is a real process writing prometheus-client's multiprocess
files; the scrape is what ``GET /metrics`` renders, parsed back with
prometheus-client's own parser.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from adapter import metrics

ROOT = Path(__file__).resolve().parents[2]
WORKER = """
import sys
from adapter import metrics
from adapter.results import Timings
for _ in range(int(sys.argv[1])):
    metrics.REQUESTS.labels("/v1/models/<model>/detect", sys.argv[2], "POST", "200").inc()
    metrics.observe_steps(sys.argv[2], Timings(decode_s=0.003, inference_s=0.2, mapping_s=0.001))
metrics.IN_FLIGHT.inc()
"""


def run_worker(directory: Path, requests: int, model: str = "digits") -> int:
    """Run one worker's lifetime to its end; its pid."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(requests), model], env=env, cwd=ROOT
    )
    assert worker.wait(timeout=60) == 0
    return worker.pid


def scraped(directory: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(metrics.scrape_registry(str(directory))).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


OK = {"route": "/v1/models/<model>/detect", "model": "digits", "method": "POST", "status": "200"}


def test_a_scrape_sums_live_and_dead_workers(tmp_path: Path) -> None:
    dead = run_worker(tmp_path, 3)
    metrics.worker_exited(dead, str(tmp_path))
    run_worker(tmp_path, 2)  # still "live": its files stay
    samples = scraped(tmp_path)
    assert value(samples, "tfs_adapter_requests_total", **OK) == 5
    count = "tfs_adapter_inference_duration_seconds_count"
    assert value(samples, count, model="digits") == 5
    total = value(samples, "tfs_adapter_inference_duration_seconds_sum", model="digits")
    assert total == pytest.approx(1.0)
    bucket = "tfs_adapter_inference_duration_seconds_bucket"
    assert value(samples, bucket, model="digits", le="0.1") == 0
    assert value(samples, bucket, model="digits", le="0.25") == 5
    assert value(samples, bucket, model="digits", le="+Inf") == 5
    # The dead worker's in-flight gauge went with it; the live one's stays.
    assert value(samples, "tfs_adapter_requests_in_flight") == 1


def test_folding_again_counts_nothing_twice(tmp_path: Path) -> None:
    first = run_worker(tmp_path, 2)
    metrics.worker_exited(first, str(tmp_path))
    metrics.worker_exited(first, str(tmp_path))  # a repeated hook finds no files
    second = run_worker(tmp_path, 4, model="digit-classes")
    metrics.worker_exited(second, str(tmp_path))
    samples = scraped(tmp_path)
    assert value(samples, "tfs_adapter_requests_total", **OK) == 2
    other = {**OK, "model": "digit-classes"}
    assert value(samples, "tfs_adapter_requests_total", **other) == 4
    # Only the folded file (and its lock) remain: no file per dead worker.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["exited.json", "exited.json.lock"]
    assert (tmp_path / "exited.json").stat().st_size < 16_000


def test_a_new_run_starts_from_zero(tmp_path: Path) -> None:
    metrics.worker_exited(run_worker(tmp_path, 2), str(tmp_path))
    run_worker(tmp_path, 1)
    metrics.clear_dir(tmp_path)
    assert value(scraped(tmp_path), "tfs_adapter_requests_total", **OK) == 0
