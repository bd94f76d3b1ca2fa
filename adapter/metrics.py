"""Prometheus metrics (``tfs_adapter_*``): the metric objects and small functions that record them.

Under gunicorn the workers share nothing, so prometheus-client runs in its
multiprocess mode: each worker writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (set by the gunicorn config before the fork) and
``GET /metrics`` sums them (:mod:`adapter.api.metrics`). Without that
variable (one process: ``flask run``, the test client) the default registry
is used. Labels are bounded: routes are URL rules (``/v1/models/<model>/detect``),
never raw paths; models are registry names or ``""``; methods are the
standard ones or ``OTHER``.

Nothing here imports Flask at module level, so :mod:`adapter.serving` can
record backend errors and breaker states without it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from flask import Flask, Response

    from adapter.results import Timings

PREFIX = "tfs_adapter"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds, from half a millisecond (decoding a small image) to 10 s (a long deadline).
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SCRAPE_ROUTE = "/metrics"
UNMATCHED = "<unmatched>"  # the route label of a request no URL rule matched (404, 405)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}

REQUESTS = Counter(
    f"{PREFIX}_requests",
    "HTTP requests answered, by URL rule, registry model, method and status.",
    ["route", "model", "method", "status"],
)
REQUEST_DURATION = Histogram(
    f"{PREFIX}_request_duration_seconds",
    "Time from a request's arrival to its response, by URL rule and registry model.",
    ["route", "model"],
    buckets=LATENCY_BUCKETS,
)
DECODE_DURATION = Histogram(
    f"{PREFIX}_decode_duration_seconds",
    "Time decoding and resizing a request's images into the model's input tensor.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
INFERENCE_DURATION = Histogram(
    f"{PREFIX}_inference_duration_seconds",
    "Time waiting on the model server's Predict for a request (retries included).",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
MAPPING_DURATION = Histogram(
    f"{PREFIX}_mapping_duration_seconds",
    "Time mapping a request's model outputs to labels, scores and boxes.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
BACKEND_ERRORS = Counter(
    f"{PREFIX}_backend_errors",
    "Failed model server calls (after retries), by backend, TF Serving model and gRPC code.",
    ["backend", "servable", "code"],
)
IN_FLIGHT = Gauge(
    f"{PREFIX}_requests_in_flight",
    "HTTP requests being handled now (all live workers), scrapes of /metrics not included.",
    multiprocess_mode="livesum",
)
# livemax: the worst breaker among the live workers (each worker has its own
# breaker). "max" would keep a dead worker's last state forever, since only
# live* files are removed when a worker exits; "liveall" adds a pid label that
# changes with every worker restart (max_requests).
CIRCUIT_STATE = Gauge(
    f"{PREFIX}_circuit_breaker_state",
    "Circuit breaker per backend: 0 closed, 1 half-open (a probe call), 2 open; worst worker.",
    ["backend"],
    multiprocess_mode="livemax",
)


def multiprocess_dir() -> str | None:
    """The directory the workers share their values through, or None in a single process."""
    return os.environ.get(MULTIPROC_ENV) or None


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (in-flight, breaker) and fold its counts into one file.

    Called from gunicorn's ``child_exit`` hook in the master (one thread). Workers
    recycled by ``max_requests`` would otherwise each leave their counter and
    histogram files behind: the directory would grow without end, and every
    scrape would read them all.
    """
    directory = multiprocess_dir()
    if not directory:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]  # unannotated
    for kind in ("counter", "histogram"):
        _fold(Path(directory) / f"{kind}_{pid}.db", Path(directory) / f"{kind}_exited.db")


def _fold(dead: Path, total: Path) -> None:
    """Add every value of ``dead`` to ``total`` (same keys), then remove ``dead``.

    Counters and histogram buckets are sums over files, so the scrape's totals
    are unchanged; the collector reads the type from the file name's prefix.
    """
    if not dead.exists():
        return
    from prometheus_client.mmap_dict import MmapedDict

    merged = MmapedDict(str(total))  # type: ignore[no-untyped-call]  # unannotated upstream
    try:
        values = MmapedDict.read_all_values_from_file(str(dead))  # type: ignore[no-untyped-call]
        for key, value, timestamp, _ in values:
            current, _ = merged.read_value(key)  # type: ignore[no-untyped-call]
            merged.write_value(key, current + value, timestamp)  # type: ignore[no-untyped-call]
    finally:
        merged.close()  # type: ignore[no-untyped-call]
    dead.unlink()


def observe_steps(model: str, timings: Timings) -> None:
    """Record one request's decode, inference and mapping times."""
    DECODE_DURATION.labels(model).observe(timings.decode_s)
    INFERENCE_DURATION.labels(model).observe(timings.inference_s)
    MAPPING_DURATION.labels(model).observe(timings.mapping_s)


def backend_error(backend: str, servable: str, code: str) -> None:
    """Count a call to the model server that failed with gRPC status ``code`` (its name)."""
    BACKEND_ERRORS.labels(backend, servable, code).inc()


def breaker_state(backend: str, state: str) -> None:
    """Set a backend's breaker gauge to ``state`` (``closed``, ``half_open`` or ``open``)."""
    CIRCUIT_STATE.labels(backend).set(BREAKER_STATES[state])


def install(app: Flask, models: Collection[str]) -> None:
    """Count and time every request of ``app``; ``models`` are the registry's names."""
    from flask import g, request

    known = frozenset(models)

    @app.before_request
    def _start() -> None:
        g.metrics_started = time.perf_counter()
        rule = request.url_rule
        if rule is None or rule.rule != SCRAPE_ROUTE:  # idle reads 0, not the scrape itself
            g.metrics_in_flight = True
            IN_FLIGHT.inc()

    @app.after_request
    def _record(response: Response) -> Response:
        rule = request.url_rule
        route = rule.rule if rule is not None else UNMATCHED
        model = (request.view_args or {}).get("model", "")
        model = model if model in known else ""
        method = request.method if request.method in METHODS else "OTHER"
        REQUESTS.labels(route, model, method, str(response.status_code)).inc()
        started: float | None = g.get("metrics_started")
        if started is not None:  # None if an earlier before_request hook failed
            REQUEST_DURATION.labels(route, model).observe(time.perf_counter() - started)
        return response

    @app.teardown_request
    def _finish(error: BaseException | None) -> None:
        if g.pop("metrics_in_flight", False):
            IN_FLIGHT.dec()
