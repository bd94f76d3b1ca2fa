"""Prometheus metrics (``tfs_adapter_*``): the metric objects and small functions that record them.

Under gunicorn the workers share nothing, so prometheus-client runs in its
multiprocess mode: each worker writes its values to files in
``PROMETHEUS_MULTIPROC_DIR`` (set by the gunicorn config before the fork) and
``GET /metrics`` sums them (:func:`scrape_registry`); a dead worker's counts
are folded into one file (:func:`worker_exited`). Without that variable (one
process: ``flask run``, the test client) the default registry is used.
Labels are bounded: routes are URL rules (``/v1/models/<model>/detect``),
never raw paths; models are registry names or ``""``; methods are the
standard ones or ``OTHER``.

No HTTP here: :mod:`adapter.serving` records backend errors and breaker
states, and :mod:`adapter.api.metrics` times the requests. Only
prometheus-client's public API is used.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

if TYPE_CHECKING:
    from adapter.results import Timings

PREFIX = "tfs_adapter"
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
REFUSED = Counter(
    f"{PREFIX}_requests_refused",
    "Requests refused before they ran, by reason: queue_full and wait_expired (503 overloaded, "
    "admission control), buffer_full (503 overloaded: too many bodies being read), "
    "read_timeout (408: the request arrived too slowly).",
    ["reason"],
)
RETRIES = Counter(
    f"{PREFIX}_backend_retries",
    "Model server calls failing UNAVAILABLE that were retried, or not because the retry "
    "budget was spent, by backend and outcome (retried, budget_spent).",
    ["backend", "outcome"],
)
RETRIED = "retried"
BUDGET_SPENT = "budget_spent"
READING = Gauge(
    f"{PREFIX}_requests_reading",
    "Requests whose head or body is still arriving (all live workers): read by the workers' "
    "pollers, they hold no thread yet.",
    multiprocess_mode="livesum",
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


FOLDED_FILE = "exited.json"
"""The dead workers' counters and histograms, summed, in the metrics directory."""


def worker_exited(pid: int, directory: str | None) -> None:
    """Drop a dead worker's live gauges (in-flight, breaker) and fold its counts into one file.

    Called from gunicorn's ``child_exit`` hook in the master, with the
    workers' metrics directory (None in one process: nothing to do). Workers
    recycled by ``max_requests`` would otherwise each leave their counter and
    histogram files behind: the directory would grow without end, and every
    scrape would read them all. The file is :data:`FOLDED_FILE`, JSON read
    back by :func:`scrape_registry`; it holds one value per label set, so it
    does not grow with restarts either.
    """
    if not directory:
        return
    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]  # unannotated
    root = Path(directory)
    dead = [
        path for kind in ("counter", "histogram") if (path := root / f"{kind}_{pid}.db").exists()
    ]
    if not dead:
        return
    with _locked(root):
        folded = _Folded.read(root)
        folded.add(_merge(dead))
        folded.write(root)  # before the unlink: a crash between counts twice, never loses
        for path in dead:
            path.unlink()


def clear_dir(directory: Path) -> None:
    """Make ``directory`` and empty it of an earlier run's files (their counts would add)."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in (*directory.glob("*.db"), *directory.glob(f"{FOLDED_FILE}*")):
        stale.unlink()


def scrape_registry(directory: str | None) -> CollectorRegistry:
    """What ``/metrics`` shows: this process's metrics, or with a directory, every
    worker's (live files and the folded dead ones), summed."""
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()  # fresh each scrape: the files are read anew
    registry.register(_WorkersCollector(Path(directory)))
    return registry


def _merge(files: Iterable[Path]) -> Iterable[Metric]:
    """prometheus-client's sum of these files, histogram buckets cumulative (as scraped)."""
    paths = [str(path) for path in files]
    merged: Iterable[Metric] = MultiProcessCollector.merge(paths, accumulate=True)  # type: ignore[no-untyped-call]
    return merged


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold the directory's fold lock (the master folds; any worker's scrape reads)."""
    with (root / f"{FOLDED_FILE}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_SampleKey = tuple[str, tuple[tuple[str, str], ...]]


class _Folded:
    """Counter and histogram samples summed over dead workers: family -> (type, help, values).

    Histogram buckets are stored cumulative (as scraped): cumulative counts of
    several processes add like any counter.
    """

    def __init__(self, families: dict[str, tuple[str, str, dict[_SampleKey, float]]]) -> None:
        self.families = families

    @classmethod
    def read(cls, root: Path) -> _Folded:
        try:
            data = json.loads((root / FOLDED_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls({})
        return cls(
            {
                name: (
                    family["type"],
                    family["help"],
                    {
                        (sample, tuple(sorted(labels.items()))): value
                        for sample, labels, value in family["samples"]
                    },
                )
                for name, family in data["families"].items()
            }
        )

    def add(self, families: Iterable[Metric]) -> None:
        for family in families:
            _, _, values = self.families.setdefault(
                family.name, (family.type, family.documentation, {})
            )
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                values[key] = values.get(key, 0.0) + sample.value

    def write(self, root: Path) -> None:
        data = {
            "families": {
                name: {
                    "type": kind,
                    "help": help_text,
                    "samples": [
                        [sample, dict(labels), value] for (sample, labels), value in values.items()
                    ],
                }
                for name, (kind, help_text, values) in self.families.items()
            }
        }
        partial = root / f"{FOLDED_FILE}.tmp"
        partial.write_text(json.dumps(data), encoding="utf-8")
        os.replace(partial, root / FOLDED_FILE)


class _WorkersCollector(Collector):
    """Every worker's values: prometheus-client's merge of the live files, plus the folded."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def collect(self) -> Iterable[Metric]:
        with _locked(self.root):
            live = {family.name: family for family in _merge(self.root.glob("*.db"))}
            folded = _Folded.read(self.root)
        for name, (kind, help_text, values) in folded.families.items():
            family = live.setdefault(name, Metric(name, help_text, kind))
            totals = {(s.name, tuple(sorted(s.labels.items()))): s for s in family.samples}
            for (sample, labels), value in values.items():
                known = totals.get((sample, labels))
                total = value + (known.value if known else 0.0)
                totals[(sample, labels)] = Sample(sample, dict(labels), total)
            family.samples = list(totals.values())
        return live.values()


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


def request_refused(reason: str, count: int = 1) -> None:
    """Count requests refused before they ran (see :data:`REFUSED` for the reasons)."""
    REFUSED.labels(reason).inc(count)


def retry(backend: str, outcome: str) -> None:
    """Count a retryable failure: :data:`RETRIED`, or not for :data:`BUDGET_SPENT`."""
    RETRIES.labels(backend, outcome).inc()
