"""Tracing off costs nothing: no SDK imported, one shared no-op span, no metadata sent."""

from __future__ import annotations

import subprocess
import sys

import pytest

from adapter import tracing


def test_off_every_span_is_one_shared_no_op_and_nothing_goes_out() -> None:
    assert not tracing.enabled()
    assert tracing.span("decode") is tracing.span("predict")
    assert tracing.client_span("Predict", {}) is tracing.span("mapping")
    with tracing.span("decode") as current:
        assert current is None
    assert tracing.outgoing() == ()
    assert tracing.current_trace_id() == "-"


def test_the_app_off_never_imports_opentelemetry() -> None:
    code = (
        "import sys; from adapter.app import create_app; create_app(); "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("header", "trace_id"),
    [
        (f"00-{TRACE}-00f067aa0ba902b7-01", TRACE),
        (f" 00-{TRACE.upper()}-00f067aa0ba902b7-00 ", TRACE),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),  # all-zero: invalid
        (f"00-{TRACE}-00f067aa0ba902b7", None),
        (f"01-{TRACE}-00f067aa0ba902b7-01\r\nX: y", None),
        ("", None),
        (None, None),
    ],
)
def test_a_callers_traceparent_gives_its_trace_id_only_when_valid(
    header: str | None, trace_id: str | None
) -> None:
    assert tracing.given_trace_id(header) == trace_id
