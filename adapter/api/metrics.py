"""``GET /metrics`` and the request metrics: the HTTP side of :mod:`adapter.metrics`.

Open without an API key, like the health checks: it is for the operator's
Prometheus, scraping inside the cluster. Under gunicorn it sums the values of
every worker, live or gone (counters survive a worker's restart), whichever
worker answers the scrape.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from flask import Blueprint, Flask, Response, g, request
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapter import metrics
from adapter.api import service
from adapter.metrics import (
    IN_FLIGHT,
    METHODS,
    REQUEST_DURATION,
    REQUESTS,
    SCRAPE_ROUTE,
    UNMATCHED,
)

bp = Blueprint("metrics", __name__)


@bp.get(SCRAPE_ROUTE)
def scrape() -> ResponseReturnValue:
    """Every metric, from all the workers' files in multiprocess mode, else this process's."""
    directory = service().settings.metrics_dir
    response = Response(
        generate_latest(metrics.scrape_registry(directory)), content_type=CONTENT_TYPE_LATEST
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def install(app: Flask, models: Collection[str]) -> None:
    """Count and time every request of ``app``; ``models`` are the registry's names."""
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
