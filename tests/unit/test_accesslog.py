"""The JSON access record and the JSON app log lines, without a server."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timedelta

from adapter.accesslog import access_record, server_timing
from adapter.api.context import JsonFormatter, RequestIdFilter, formatter

ENVIRON = {
    "REQUEST_METHOD": "POST",
    "PATH_INFO": "/v1/models/digits/detect",
    "QUERY_STRING": "api_key=secret-in-the-query",
    "CONTENT_LENGTH": "1234",
    "HTTP_USER_AGENT": "curl/8.0",
    "HTTP_AUTHORIZATION": "Bearer secret-in-a-header",
    "HTTP_X_API_KEY": "secret-in-a-header",
}


def test_server_timing_is_parsed_leniently() -> None:
    header = 'decode;dur=1.5, inference;desc="x";dur=20, mapping;dur=bad, annotate'
    assert server_timing(header) == {"decode": 1.5, "inference": 20.0}
    assert server_timing(None) == {}


def test_an_access_record_has_the_fields_and_no_secrets() -> None:
    headers = [
        ("Content-Type", "application/json"),
        ("x-request-id", "rid-1"),
        ("Server-Timing", "decode;dur=1.250, inference;dur=30.000, mapping;dur=0.500"),
    ]
    environ = {**ENVIRON, "adapter.trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    record = access_record(200, headers, environ, timedelta(milliseconds=42.5), 321)
    assert datetime.fromisoformat(record.pop("time")).tzinfo is not None
    assert record == {
        "request_id": "rid-1",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "method": "POST",
        "path": "/v1/models/digits/detect",
        "model": "digits",
        "status": 200,
        "duration_ms": 42.5,
        "bytes_in": 1234,
        "bytes_out": 321,
        "user_agent": "curl/8.0",
        "decode_ms": 1.25,
        "inference_ms": 30.0,
        "mapping_ms": 0.5,
        "annotate_ms": None,
    }
    assert "secret" not in json.dumps(record)


def test_an_access_record_without_model_length_or_id() -> None:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/v1/models", "CONTENT_LENGTH": ""}
    record = access_record(404, [], environ, timedelta(0), None)
    assert (record["model"], record["bytes_in"], record["request_id"]) == (None, None, None)
    assert record["trace_id"] == "-"  # no trace
    assert access_record(200, [], {"PATH_INFO": "/v1/models/x"}, timedelta(0), 0)["model"] == "x"


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("adapter.test", logging.WARNING, "x.py", 1, message, args, exc_info)
    RequestIdFilter().filter(record)
    return record


def test_json_lines_are_one_object_each_even_with_newlines_and_tracebacks() -> None:
    line = JsonFormatter().format(_record("two\nlines %s", "forged\r\nINFO x", exc=True))
    assert "\n" not in line
    parsed = json.loads(line)
    assert set(parsed) == {
        "time", "level", "logger", "request_id", "trace_id", "message", "exc_info"
    }  # fmt: skip
    assert parsed["level"] == "WARNING" and parsed["logger"] == "adapter.test"
    assert parsed["request_id"] == "-"
    assert parsed["message"] == "two\nlines forged\r\nINFO x"
    assert "ValueError: boom" in parsed["exc_info"]


def test_text_is_still_available() -> None:
    line = formatter("text").format(_record("hello"))
    assert line == "WARNING adapter.test request_id=- trace_id=- hello"
    assert isinstance(formatter("json"), JsonFormatter)
