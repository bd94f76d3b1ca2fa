"""The Flask application factory: ``gunicorn "adapter.app:create_app()"``."""

from __future__ import annotations

import io
import logging
from typing import IO

from flask import Flask, Request, Response, json, request
from werkzeug.exceptions import HTTPException

from adapter import tracing
from adapter.api import auth, context, cors, demo, docs, health, inference, models, problems
from adapter.api import metrics as metrics_api
from adapter.config import Settings, load_settings
from adapter.service import Service

log = logging.getLogger(__name__)

# Werkzeug's own HTTP errors, as members of our problem tree.
_HTTP_ERRORS: dict[int, type[problems.ApiError]] = {
    400: problems.BadRequest,
    404: problems.NotFound,
    405: problems.MethodNotAllowed,
    406: problems.NotAcceptable,
    413: problems.PayloadTooLarge,
    415: problems.UnsupportedMediaType,
}


class _InMemoryUploads(Request):
    """Flask's request, keeping uploaded files in memory.

    Werkzeug writes a file part over 500 KB to a temporary file; here the body
    is in memory already (the worker read it whole, within the upload limit),
    so that is a copy through the disk for nothing: a 12 MP photo spent more
    time there than in its multipart parsing.
    """

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()


def create_app(settings: Settings | None = None) -> Flask:
    """Build the service from ``settings`` (default: read from the environment).

    No connection is opened here: each backend's channel is made on first use
    in each worker, after gunicorn forks.
    """
    settings = settings or load_settings()
    app = Flask(__name__)
    app.request_class = _InMemoryUploads
    app.url_map.merge_slashes = False  # "//" is a 404 problem, not an HTML redirect
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented field order
    context.configure_logging(settings.log_level, settings.log_format)  # request ids in every line
    if settings.trace_exporters and not tracing.enabled():  # in the worker, after the fork
        tracing.start(settings.trace_exporters, settings.otlp_protocol)
    app.extensions["service"] = Service(settings)
    metrics_api.install(app, settings.models)  # first: counts and times what the others do
    context.install(app)  # X-Request-ID on every response and log line
    cors.install(app, settings.cors_origins, settings.cors_max_age_s)
    auth.install(app, settings.api_keys)
    for blueprint in (health.bp, metrics_api.bp, docs.bp, models.bp, inference.bp):
        app.register_blueprint(blueprint)
    if settings.demo_page:
        app.register_blueprint(demo.bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _error)
    return app


def _problem(error: problems.ApiError) -> Response:
    problem = error.to_problem(instance=request.path)
    problem["request_id"] = context.request_id()
    body = json.dumps(problem)
    response = Response(body, status=error.status, mimetype=problems.PROBLEM_CONTENT_TYPE)
    response.headers.update(error.headers)
    return response


def _error(error: Exception) -> Response:
    """A problem or a domain exception as its problem; anything else is a logged 500."""
    problem = problems.from_exception(error)
    if problem is not None:
        return _problem(problem)
    log.exception("unhandled error on %s %r", request.method, request.path)  # %r: no forged lines
    return _problem(problems.ApiError("The service failed to handle this request."))


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    kind = _HTTP_ERRORS.get(status)
    if kind is None:
        return _problem(problems.HttpError(status, error.name, error.description or error.name))
    if status == 413:
        return _problem(problems.PayloadTooLarge.over_limit())
    if status == 404:
        return _problem(kind("There is no such endpoint; see GET /v1/models."))
    if status == 405:
        allowed = ", ".join(sorted(getattr(error, "valid_methods", None) or []))
        return _problem(
            kind("This endpoint does not answer this method.", headers={"Allow": allowed})
        )
    return _problem(kind(error.description or error.name))
