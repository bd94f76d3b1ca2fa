"""Traces with OpenTelemetry: a span per request, and its decode, predict and mapping.

Off unless the standard variables turn it on (``OTEL_TRACES_EXPORTER``, or an
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``; ``OTEL_SDK_DISABLED=true`` wins),
as :func:`adapter.config.load_settings` reads them. Off, the SDK is never
imported and every span here is one shared no-op context manager: tracing
costs a function call. On, :func:`start` builds the SDK in each worker after
gunicorn forks (its export thread must be the worker's own), with a batch
processor and the OTLP exporter over gRPC or HTTP
(``OTEL_EXPORTER_OTLP_PROTOCOL``); everything else the SDK reads itself from
``OTEL_*`` (endpoint, headers, service name and resource, sampler, batch
sizes), as the OpenTelemetry specification says.

Each request gets a server span (:func:`request_span`) continuing the
caller's W3C ``traceparent``; the pipeline's phases are its children
(:func:`span`), and each call to the model server a client span
(:func:`client_span`) whose context goes out as ``traceparent`` in the gRPC
metadata or HTTP headers (:func:`outgoing`). Every log line carries the
``trace_id`` (:func:`current_trace_id`): the request's when tracing is on,
else the caller's ``traceparent``'s, so logs still join the caller's trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any, cast

# The W3C trace context header, version 00: trace id, parent id, flags.
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_ZERO_TRACE = "0" * 32
TRACE_ID_KEY = "adapter.trace_id"  # the request's trace id, in the WSGI environ
NO_TRACE = "-"
EXPORTERS = ("otlp", "console", "none")
PROTOCOLS = ("grpc", "http/protobuf")

_NO_SPAN: AbstractContextManager[None] = nullcontext()
_tracer: Any = None  # the SDK's tracer once started; None: tracing is off
_provider: Any = None
# With tracing off: the caller's trace id, for the log lines.
_given_trace_id: ContextVar[str | None] = ContextVar("given_trace_id", default=None)


def start(exporters: Sequence[str], protocol: str = "grpc") -> None:
    """Start the SDK in this process, exporting to ``exporters`` (see :data:`EXPORTERS`)."""
    global _tracer, _provider
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "tfs-adapter"}))
    for name in exporters:
        if name == "otlp":
            provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(protocol)))
        elif name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer("adapter")


def _otlp_exporter(protocol: str) -> Any:
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    return OTLPSpanExporter()


def provider() -> Any:
    """The SDK's tracer provider (None while tracing is off): for adding a span processor."""
    return _provider


def stop() -> None:
    """Export what is buffered and stop (a worker's exit)."""
    if _provider is not None:
        _provider.shutdown()


def enabled() -> bool:
    """Whether this process records traces."""
    return _tracer is not None


def span(name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
    """A child span of the current one for the duration of a ``with`` block (no-op when off)."""
    if _tracer is None:
        return _NO_SPAN
    return _tracer.start_as_current_span(name, attributes=attributes)  # type: ignore[no-any-return]


def client_span(name: str, attributes: Mapping[str, Any]) -> AbstractContextManager[Any]:
    """A client span for a call to the model server, only inside a request's trace.

    Background calls (readiness checks) start no trace of their own.
    """
    if _tracer is None:
        return _NO_SPAN
    from opentelemetry import trace

    if not trace.get_current_span().is_recording():
        return _NO_SPAN
    return _tracer.start_as_current_span(  # type: ignore[no-any-return]
        name, kind=trace.SpanKind.CLIENT, attributes=attributes
    )


def outgoing() -> tuple[tuple[str, str], ...]:
    """The current span's ``traceparent`` (and ``tracestate``) for a call; () when off."""
    if _tracer is None:
        return ()
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple(carrier.items())


def name_request(route: str) -> None:
    """Name the current request's span after its route (``POST /v1/models/{model}/detect``)."""
    if _tracer is None:
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    current.update_name(route)
    current.set_attribute("http.route", route.split(" ", 1)[-1])


def current_trace_id() -> str:
    """The trace id of the current request (32 hex digits), or ``-`` outside any trace."""
    if _tracer is not None:
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            return format(context.trace_id, "032x")
    return _given_trace_id.get() or NO_TRACE


def given_trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header, None if it is not a valid one."""
    match = _TRACEPARENT.fullmatch(traceparent.strip().lower()) if traceparent else None
    if match is None or match.group(1) == _ZERO_TRACE:
        return None
    return match.group(1)


class _EnvironGetter:
    """Reads propagation headers from a WSGI environ (``traceparent``: ``HTTP_TRACEPARENT``)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [key[5:].lower().replace("_", "-") for key in carrier if key.startswith("HTTP_")]


@contextmanager
def request_span(environ: dict[str, Any]) -> Iterator[Any]:
    """The request's server span, continuing the caller's ``traceparent`` (a WSGI environ's).

    Yields the span, or None when tracing is off (the caller's trace id is
    then what :func:`current_trace_id` gives meanwhile). Either way the
    trace id is left in ``environ[TRACE_ID_KEY]`` for the access log.
    """
    if _tracer is None:
        given = given_trace_id(environ.get("HTTP_TRACEPARENT"))
        environ[TRACE_ID_KEY] = given or NO_TRACE
        token = _given_trace_id.set(given)
        try:
            yield None
        finally:
            _given_trace_id.reset(token)
        return
    from opentelemetry import propagate, trace

    method = environ.get("REQUEST_METHOD", "GET")
    with _tracer.start_as_current_span(
        method,
        context=propagate.extract(environ, getter=cast(Any, _EnvironGetter())),
        kind=trace.SpanKind.SERVER,
        attributes={
            "http.request.method": method,
            "url.path": environ.get("PATH_INFO", ""),
            "url.scheme": environ.get("wsgi.url_scheme", "http"),
        },
    ) as current:
        environ[TRACE_ID_KEY] = format(current.get_span_context().trace_id, "032x")
        yield current


def answered(current: Any, status: int, *, failed: bool) -> None:
    """Note the response's status on a request's span (an error if ``failed``)."""
    current.set_attribute("http.response.status_code", status)
    if failed:
        from opentelemetry.trace import StatusCode

        current.set_status(StatusCode.ERROR)
