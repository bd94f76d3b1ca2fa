"""``GET /metrics``: the Prometheus text exposition of :mod:`adapter.metrics`.

Open without an API key, like the health checks: it is for the operator's
Prometheus, scraping inside the cluster. Under gunicorn it sums the values of
every worker, live or gone (counters survive a worker's restart), whichever
worker answers the scrape.
"""

from __future__ import annotations

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from adapter import metrics

bp = Blueprint("metrics", __name__)


@bp.get(metrics.SCRAPE_ROUTE)
def scrape() -> ResponseReturnValue:
    """Every metric, from all the workers' files in multiprocess mode, else this process's."""
    registry = REGISTRY
    if metrics.multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()  # fresh each scrape: the files are read anew
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    response = Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response
