"""Per-request context: the request id (``X-Request-ID``) and the log lines that carry it.

A client's ``X-Request-ID`` is kept if it is 1-128 characters of
``[A-Za-z0-9._:+=/-]``; anything else (absent, too long, CR/LF or other odd
characters that could forge log lines) is replaced by a fresh random id
of 32 hex digits. The id is echoed on every response, errors included, and
added to every log record emitted while the request runs (``-`` outside a request).

Log lines are one JSON object each (:class:`JsonFormatter`, the default) or
text (:data:`LOG_FORMAT`), as ``ADAPTER_LOG_FORMAT`` says.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from adapter import tracing

HEADER = "X-Request-ID"
ARRIVED = "adapter.arrived"  # WSGI environ key: time.monotonic() when the worker took the request
LOG_FORMAT = "%(levelname)s %(name)s request_id=%(request_id)s trace_id=%(trace_id)s %(message)s"
_VALID_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")
# The current request's id; a ContextVar so log records from any logger can read it.
_current: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Set ``record.request_id`` to the current request's id (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current.get() or "-"
        record.trace_id = tracing.current_trace_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request_id, message (and exc_info).

    ``json.dumps`` escapes CR/LF, so no message can forge a second line.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or _current.get() or "-",
            "trace_id": getattr(record, "trace_id", None) or tracing.current_trace_id(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format``: ``json`` (:class:`JsonFormatter`) or ``text``."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT)


def configure_logging(level: str, log_format: str = "json") -> None:
    """Log to stderr in ``log_format`` (``json`` or ``text``) unless logging is set up already.

    Either way, every handler of the root logger (and of gunicorn's error
    logger, when running under gunicorn) gets a :class:`RequestIdFilter`, so
    ``%(request_id)s`` works in their formats.
    """
    root = logging.getLogger()
    if not root.handlers:
        stderr = logging.StreamHandler()
        stderr.setFormatter(formatter(log_format))
        root.addHandler(stderr)
        root.setLevel(level)
    for handler in (*root.handlers, *logging.getLogger("gunicorn.error").handlers):
        if not any(isinstance(known, RequestIdFilter) for known in handler.filters):
            handler.addFilter(RequestIdFilter())


class _StampArrival:
    """WSGI middleware: note when the request reached the app, before its body is read."""

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ.setdefault(ARRIVED, time.monotonic())
        result: Iterable[bytes] = self.wsgi_app(environ, start_response)
        return result


def arrived() -> float:
    """``time.monotonic()`` when the current request reached the app: its deadline starts there."""
    stamp = request.environ.get(ARRIVED)
    return stamp if isinstance(stamp, float) else time.monotonic()


def install(app: Flask) -> None:
    """Register the hooks that give every request an id, echo it and forget it after,
    and stamp its arrival (:func:`arrived`)."""
    app.wsgi_app = _Traced(_StampArrival(app.wsgi_app))  # type: ignore[method-assign]

    @app.before_request
    def _start() -> None:
        request_id()
        if request.url_rule is not None:
            tracing.name_request(f"{request.method} {request.url_rule.rule}")

    @app.after_request
    def _echo(response: Response) -> Response:
        # Runs for error handlers' responses (404, 405, 413, 401...) as well.
        response.headers[HEADER] = request_id()
        return response

    @app.teardown_request
    def _forget(error: BaseException | None) -> None:
        g.pop("request_id", None)
        token = g.pop("request_id_token", None)
        if token is not None:
            _current.reset(token)


def request_id() -> str:
    """The current request's id, chosen on first use; ``-`` outside a request."""
    if not has_request_context():
        return _current.get() or "-"
    current: str | None = g.get("request_id")
    if current is None:
        current = valid_request_id(request.headers.get(HEADER, ""))
        g.request_id = current
        g.request_id_token = _current.set(current)
    return current


def _fresh_id() -> str:
    """32 random hex digits, as a uuid4's: from the process's generator (reseeded in
    each forked worker), which costs no system call, where ``uuid4`` reads the
    kernel's randomness each time: the poller makes one per refusal in a flood."""
    return f"{random.getrandbits(128):032x}"


def valid_request_id(given: str) -> str:
    """``given`` if it is a valid request id (see the module), else a fresh one."""
    return given if _VALID_ID.fullmatch(given) else _fresh_id()


class _Traced:
    """WSGI middleware: each request in its trace's server span (:mod:`adapter.tracing`)."""

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with tracing.request_span(environ) as current:
            if current is None:
                result: Iterable[bytes] = self.wsgi_app(environ, start_response)
                return result

            def _start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
                code = int(status[:3])
                tracing.answered(current, code, failed=code >= 500)
                return start_response(status, headers, exc_info)

            result = self.wsgi_app(environ, _start_response)
            return result
