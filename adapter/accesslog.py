"""Gunicorn's access log as one JSON object per request (``logger_class``).

:class:`JsonLogger` replaces gunicorn's Apache-style access line with
:func:`access_record`: time, request id, trace id, method, path, model, status,
duration, bytes in and out, user agent, and the decode, inference, mapping
(and annotate) milliseconds of the response's ``Server-Timing`` header. It
never logs request headers other than the user agent and ``Content-Length``
(so never ``Authorization`` or ``X-API-Key``), the query string, or a body.
With ``ADAPTER_LOG_FORMAT=json`` gunicorn's own lines (``gunicorn.error``)
are JSON too.
"""

from __future__ import annotations

import contextlib
import json
import re
import traceback
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gunicorn import glogging  # type: ignore[import-untyped]

from adapter.api.context import HEADER, formatter
from adapter.config import load_server_settings
from adapter.tracing import NO_TRACE, TRACE_ID_KEY

# /v1/models/<model> and anything under it.
_MODEL_PATH = re.compile(r"/v1/models/([^/]+)(?:/|$)")
# The Server-Timing metrics the adapter sends (adapter.api.inference), as record fields.
TIMINGS = ("decode", "inference", "mapping", "annotate")


def server_timing(header: str | None) -> dict[str, float]:
    """``{name: ms}`` of a ``Server-Timing`` header (``name;dur=1.5, ...``); bad parts skipped."""
    timings: dict[str, float] = {}
    for metric in (header or "").split(","):
        name, *params = (part.strip() for part in metric.split(";"))
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "dur":
                with contextlib.suppress(ValueError):
                    timings[name] = float(value.strip().strip('"'))
    return timings


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def _content_length(environ: Mapping[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH")
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


def access_record(
    status: int,
    response_headers: Iterable[tuple[str, str]],
    environ: Mapping[str, Any],
    duration: timedelta,
    bytes_out: int | None,
) -> dict[str, Any]:
    """The access-log fields of one request (see the module docstring for what is left out)."""
    headers = list(response_headers)
    path = str(environ.get("PATH_INFO", ""))
    model = _MODEL_PATH.match(path)
    timings = server_timing(_header(headers, "Server-Timing"))
    record: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "request_id": _header(headers, HEADER),
        "trace_id": environ.get(TRACE_ID_KEY, NO_TRACE),
        "method": environ.get("REQUEST_METHOD"),
        "path": path,
        "model": model.group(1) if model else None,
        "status": status,
        "duration_ms": round(duration.total_seconds() * 1000, 3),
        "bytes_in": _content_length(environ),
        "bytes_out": bytes_out,
        "user_agent": environ.get("HTTP_USER_AGENT"),
    }
    for name in TIMINGS:
        record[f"{name}_ms"] = timings.get(name)
    return record


class JsonLogger(glogging.Logger):  # type: ignore[misc]  # gunicorn has no type hints
    """Gunicorn's logger with a JSON access line per request (``accesslog = "-"``: stdout)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if load_server_settings().log_format == "json":
            for handler in self.error_log.handlers:
                handler.setFormatter(formatter("json"))

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        try:
            record = access_record(
                int(status), resp.headers, environ, request_time, getattr(resp, "sent", None)
            )
            self.access_log.info(json.dumps(record))
        except Exception:
            self.error(traceback.format_exc())
