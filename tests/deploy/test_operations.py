"""Operating the deployment: names that coexist, connections that drain, files that stay bounded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.deploy.conftest import DEPLOY, ROOT, k8s_objects, load_docs

KNATIVE = DEPLOY / "knative" / "service.yaml"


def test_knative_service_name_does_not_clash_with_a_k8s_service_in_its_namespace() -> None:
    (ksvc,) = load_docs(KNATIVE)
    services = {name for kind, name in k8s_objects() if kind == "Service"}
    deploy_doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "same namespace" in deploy_doc  # the Knative section of docs/deploy.md asks for it
    assert ksvc["metadata"]["name"] not in services


def _grpc_args(args: list[str]) -> dict[str, int]:
    (arg,) = [a for a in args if a.startswith("--grpc_channel_arguments=")]
    pairs = arg.split("=", 1)[1].split(",")
    return {k: int(v) for k, v in (p.split("=", 1) for p in pairs)}


def test_tfserving_prestop_outlasts_max_connection_age_with_jitter_and_grace() -> None:
    pod = k8s_objects()[("Deployment", "tfserving")]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    grpc_args = _grpc_args(container["args"])
    sleep_s = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    longest_ms = (
        grpc_args["grpc.max_connection_age_ms"] * 1.1
        + grpc_args["grpc.max_connection_age_grace_ms"]
    )
    assert sleep_s * 1000 >= longest_ms
    assert pod["terminationGracePeriodSeconds"] > sleep_s


# One worker's lifetime: it answers a request, so it writes counter and histogram files.
_WORKER = """
from adapter import metrics
from adapter.results import Timings
metrics.REQUESTS.labels("/v1/models/<model>/detect", "digits", "POST", "200").inc()
metrics.observe_steps("digits", Timings(decode_s=1.0, inference_s=2.0, mapping_s=0.5))
"""


def _allocated_bytes(directory: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in directory.iterdir())


def test_dead_workers_metric_files_do_not_grow_without_bound(tmp_path: Path) -> None:
    from adapter import metrics

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    usage = []
    for _ in range(8):  # eight worker lifetimes, as max_requests recycles them
        worker = subprocess.Popen([sys.executable, "-c", _WORKER], env=env, cwd=ROOT)
        assert worker.wait(timeout=60) == 0
        metrics.worker_exited(worker.pid, str(tmp_path))  # what gunicorn's child_exit hook does
        usage.append(_allocated_bytes(tmp_path))
    pod = k8s_objects()[("Deployment", "tfs-adapter")]["spec"]["template"]["spec"]
    (tmp,) = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert tmp["emptyDir"]["sizeLimit"] == "64Mi"
    # The files of dead workers are folded into one: usage does not scale with restarts.
    assert usage[-1] <= 2 * usage[0], usage
    # ...and nothing is lost: the eight lifetimes' requests are all counted.
    folded = metrics.scrape_registry(str(tmp_path)).collect()
    wanted = {"tfs_adapter_requests_total", "tfs_adapter_decode_duration_seconds_count"}
    counts = {
        sample.name: sample.value
        for family in folded
        for sample in family.samples
        if sample.name in wanted
    }
    assert counts == {
        "tfs_adapter_requests_total": 8,
        "tfs_adapter_decode_duration_seconds_count": 8,
    }
