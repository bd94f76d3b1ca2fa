"""The adapter's gunicorn config, plus the SDK's in-memory exporter in each worker.

Each worker adds a span processor to the tracer provider the app started
(``OTEL_TRACES_EXPORTER=none``: traces on, nothing exported) and, on its way
out, writes the spans it kept to ``$TEST_SPANS_DIR/<pid>.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from adapter import tracing
from adapter.gunicorn_conf import *  # noqa: F403
from adapter.gunicorn_conf import post_worker_init as _post_worker_init
from adapter.gunicorn_conf import worker_exit as _worker_exit

_kept: Any = None


def post_worker_init(worker: Any) -> None:
    global _kept
    _post_worker_init(worker)
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    _kept = InMemorySpanExporter()
    tracing.provider().add_span_processor(SimpleSpanProcessor(_kept))


def worker_exit(server: Any, worker: Any) -> None:
    _worker_exit(server, worker)
    spans = [
        {
            "name": span.name,
            "kind": span.kind.name,
            "trace_id": format(span.context.trace_id, "032x"),
            "span_id": format(span.context.span_id, "016x"),
            "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
            "attributes": dict(span.attributes or {}),
        }
        for span in _kept.get_finished_spans()
    ]
    path = Path(os.environ["TEST_SPANS_DIR"]) / f"{os.getpid()}.json"
    path.write_text(json.dumps(spans), encoding="utf-8")
