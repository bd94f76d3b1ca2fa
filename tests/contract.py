"""Every response the tests receive is checked against ``openapi.yaml`` (openapi-core, OAS 3.1).

The Flask test client (:class:`ContractClient`) and a ``requests`` session
(:func:`contract_session`) call :func:`check` on each response, so a test
never has to: the status must be listed for the operation, the content type
too, a JSON body must match its schema, documented headers must be there and
valid. Answers for routes the spec doesn't have (404, 405) must still be
problem+json bodies matching the ``Problem`` schema, with ``X-Request-ID``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import yaml
from flask.testing import FlaskClient
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from openapi_schema_validator import OAS31Validator
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.test import TestResponse

SPEC_FILE = Path(__file__).resolve().parents[1] / "openapi.yaml"
PROBLEM = "application/problem+json"


class ContractError(AssertionError):
    """A response the contract doesn't allow."""


@cache
def spec() -> dict[str, Any]:
    """``openapi.yaml`` as a dict, read once per test session."""
    document: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    return document


def _text(data: bytes, **parameters: str) -> str:
    return data.decode(parameters.get("charset", "utf-8"))


def _yaml(data: bytes, **parameters: str) -> Any:
    return yaml.safe_load(data)


def _octets(data: bytes, **parameters: str) -> str:
    # A binary body's schema is ``type: string, format: binary``: only its media type is checked.
    return data.decode("latin-1")


MEDIA_TYPES = {
    PROBLEM: json.loads,
    "application/yaml": _yaml,
    "text/css": _text,
    "text/javascript": _text,
    "image/png": _octets,
    "image/jpeg": _octets,
}


@cache
def _openapi() -> OpenAPI:
    config = Config(extra_media_type_deserializers=MEDIA_TYPES)
    return OpenAPI(SchemaPath.from_dict(spec()), config=config)


@cache
def _problem_validator() -> OAS31Validator:
    # The Problem schema, resolving its $refs inside the whole document.
    document = {**spec(), "$ref": "#/components/schemas/Problem"}
    return OAS31Validator(document)


@dataclass(frozen=True)
class _Request:
    """openapi-core's view of the request: just enough to find the operation."""

    path: str
    method: str
    parameters: RequestParameters = field(default_factory=RequestParameters)
    body: bytes | None = None
    content_type: str = "application/octet-stream"

    @property
    def host_url(self) -> str:
        # The spec's server is relative ("/"): whatever host the test used matches it.
        return "http://localhost"


@dataclass(frozen=True)
class _Response:
    status_code: int
    content_type: str
    headers: Headers
    data: bytes


def check(
    method: str, url: str, status: int, headers: Mapping[str, str] | Headers, body: bytes
) -> None:
    """Raise :class:`ContractError` unless this answer to ``method url`` follows openapi.yaml."""
    parts = urlsplit(url)
    response_headers = Headers(list(headers.items()))
    content_type = response_headers.get("Content-Type", "")
    request = _Request(
        path=parts.path,
        method=method.lower(),
        parameters=RequestParameters(query=ImmutableMultiDict(parse_qsl(parts.query))),
    )
    mimetype = content_type.split(";")[0].strip()
    response = _Response(status, mimetype, response_headers, body)
    where = f"{method.upper()} {parts.path} -> {status} {content_type}"
    errors = list(_openapi().iter_response_errors(request, response))
    if errors and isinstance(errors[0], PathError):
        if method.upper() == "OPTIONS" and status == 200 and response_headers.get("Allow"):
            return  # HTTP's own OPTIONS answer (the methods in Allow), as the web framework gives
        _check_undocumented(where, mimetype, response_headers, body)
        return
    if errors:
        details = "\n".join(_describe(error) for error in errors)
        raise ContractError(f"{where} breaks openapi.yaml:\n{details}\nbody: {body[:800]!r}")


def _check_undocumented(where: str, mimetype: str, headers: Headers, body: bytes) -> None:
    """A route or method the spec doesn't have still answers a documented problem."""
    if mimetype != PROBLEM:
        raise ContractError(f"{where}: undocumented route answered {mimetype}, not {PROBLEM}")
    try:
        problem = json.loads(body)
    except ValueError:
        raise ContractError(f"{where}: the problem body is not JSON: {body[:200]!r}") from None
    errors = sorted(_problem_validator().iter_errors(problem), key=str)
    if errors:
        raise ContractError(f"{where}: not a Problem: {errors[0].message}; body: {body[:400]!r}")
    if not headers.get("X-Request-ID"):
        raise ContractError(f"{where}: no X-Request-ID header")
    if problem["status"] == 405 and not headers.get("Allow"):
        raise ContractError(f"{where}: a 405 without an Allow header (RFC 9110 15.5.6)")


def _describe(error: Exception) -> str:
    causes = [error, *(getattr(error, "schema_errors", None) or [])]
    cause = error.__cause__
    while cause is not None:
        causes.append(cause)
        causes.extend(getattr(cause, "schema_errors", None) or [])
        cause = cause.__cause__
    return "; ".join(dict.fromkeys(f"{type(c).__name__}: {c}" for c in causes))


class ContractClient(FlaskClient):
    """A Flask test client that checks every response against openapi.yaml.

    ``contract=False`` skips the check for one request that is meant to be odd.
    """

    def open(self, *args: Any, contract: bool = True, **kwargs: Any) -> TestResponse:
        """Send the request as :class:`FlaskClient` does, then check the answer."""
        response = super().open(*args, **kwargs)
        if contract:
            request = response.request
            check(
                request.method,
                request.full_path if request.query_string else request.path,
                response.status_code,
                response.headers,
                response.get_data(),
            )
        return response


def _check_requests_response(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    check(
        response.request.method or "GET",
        response.request.url or response.url,
        response.status_code,
        response.headers,
        response.content,
    )


def contract_session() -> requests.Session:
    """A ``requests`` session that checks every response against openapi.yaml."""
    session = requests.Session()
    session.hooks["response"].append(_check_requests_response)
    return session
