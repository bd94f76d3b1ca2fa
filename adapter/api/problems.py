"""Every error a client can see, as an RFC 9457 problem: the HTTP edge's one table.

An :class:`ApiError` has a status, a stable problem ``type`` and a short
``title``; ``detail`` is written for the caller and never carries stack
traces, file paths or backend addresses. The HTTP layer raises the
HTTP-only ones (a malformed body, a missing key, ...) directly; the core
raises :mod:`adapter.exceptions` and :class:`~adapter.imaging.ImageError`,
which :func:`from_exception` turns into problems through :data:`DOMAIN_PROBLEMS`
(the only place that gives them an HTTP status).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from adapter import exceptions, imaging

PROBLEM_TYPE_BASE = "https://tfs-adapter.readthedocs.io/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class ApiError(Exception):
    """An error with an HTTP status and a problem type; the base of the tree."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers) if headers else {}

    @property
    def type_uri(self) -> str:
        """The problem ``type``: a stable URI per kind of error."""
        return PROBLEM_TYPE_BASE + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """Render the RFC 9457 body (``errors`` only for field problems)."""
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return body


class HttpError(ApiError):
    """Any other HTTP error raised by the web framework, with its own status."""

    slug = "http-error"

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title = status, title


class BadRequest(ApiError):
    """The request body is malformed (400)."""

    status, slug, title = 400, "bad-request", "Malformed request"


class Unauthorized(ApiError):
    """API keys are on and the request has none, or a wrong one (401)."""

    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="tfs-adapter"'})


class NotFound(ApiError):
    """No such route (404)."""

    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(ApiError):
    """The route exists but not for this HTTP method (405)."""

    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class NotAcceptable(ApiError):
    """The ``Accept`` header asks for no representation this endpoint has (406)."""

    status, slug, title = 406, "not-acceptable", "Not acceptable"


class RequestTimeout(ApiError):
    """The request did not arrive within the read timeout (408; :mod:`adapter.worker`)."""

    status, slug, title = 408, "request-timeout", "Request timeout"

    def __init__(self) -> None:
        super().__init__("The request did not arrive in time; send it faster, or make it smaller.")


class PayloadTooLarge(ApiError):
    """The upload is larger than the configured limit (413)."""

    status, slug, title = 413, "payload-too-large", "Payload too large"

    @classmethod
    def over_limit(cls) -> PayloadTooLarge:
        """The one way the body can be too large, worded for the caller."""
        return cls("The upload is larger than this service accepts.")


class UnsupportedMediaType(ApiError):
    """The request body's ``Content-Type`` is not one the endpoint reads (415)."""

    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(ApiError):
    """A request option or field is invalid; ``errors`` names each field (422)."""

    status, slug, title = 422, "validation-failed", "Invalid request options"


class NotReady(ApiError):
    """The service can't serve yet: a model is not available (503)."""

    status, slug, title = 503, "not-ready", "Not ready"


@dataclass(frozen=True)
class ProblemType:
    """A problem type's status, ``type`` slug and title."""

    status: int
    slug: str
    title: str


def _image_detail(exc: Exception) -> str:
    return f"The image could not be decoded: {exc}"


_UNSUPPORTED_IMAGE = (
    "The upload is not an image in a supported format (JPEG, PNG, WebP, GIF or BMP)."
)
_INVALID_IMAGE = ProblemType(400, "invalid-image", "Invalid image")
_UNAVAILABLE = ProblemType(503, "backend-unavailable", "Model server unavailable")
_BACKEND_ERROR = ProblemType(502, "backend-error", "Model server error")

DOMAIN_PROBLEMS: tuple[tuple[type[Exception], ProblemType, Callable[[Exception], str]], ...] = (
    # Most specific first: the first row the exception is an instance of wins.
    (imaging.EmptyImage, _INVALID_IMAGE, lambda _: "The uploaded image is empty."),
    (
        imaging.UnsupportedImage,
        ProblemType(415, "unsupported-image", "Unsupported image"),
        lambda _: _UNSUPPORTED_IMAGE,
    ),
    (
        imaging.ImageTooLarge,
        ProblemType(413, "image-too-large", "Image too large"),
        lambda exc: f"The image is too large: {exc}",
    ),
    (imaging.ImageError, _INVALID_IMAGE, _image_detail),
    (exceptions.ModelRejectedImage, _INVALID_IMAGE, str),
    (exceptions.UnknownModel, ProblemType(404, "unknown-model", "Unknown model"), str),
    (exceptions.WrongTask, ProblemType(404, "not-found", "Not found"), str),
    (
        exceptions.InvalidOption,
        ProblemType(422, "validation-failed", "Invalid request options"),
        str,
    ),
    (
        exceptions.ModelVersionNotFound,
        ProblemType(404, "model-version-not-found", "Model version not found"),
        str,
    ),
    (exceptions.Overloaded, ProblemType(503, "overloaded", "Service overloaded"), str),
    (
        exceptions.BackendOverloaded,
        ProblemType(503, "backend-overloaded", "Model server overloaded"),
        str,
    ),
    (
        exceptions.CircuitOpen,
        ProblemType(503, "backend-circuit-open", "Model server calls paused"),
        str,
    ),
    (exceptions.BackendUnavailable, _UNAVAILABLE, str),
    (exceptions.ModelNotServed, ProblemType(503, "model-not-served", "Model not served"), str),
    (exceptions.ModelNotReady, ProblemType(503, "model-not-ready", "Model not ready"), str),
    (exceptions.Unavailable, _UNAVAILABLE, str),
    (exceptions.BackendTimeout, ProblemType(504, "backend-timeout", "Model server timeout"), str),
    (
        exceptions.BackendRejected,
        ProblemType(502, "backend-rejected-request", "Model server rejected the request"),
        str,
    ),
    (
        exceptions.BackendMessageTooLarge,
        ProblemType(502, "backend-message-too-large", "Model server message too large"),
        str,
    ),
    (exceptions.BackendError, _BACKEND_ERROR, str),
)
"""Each domain exception's problem type and the detail its caller reads."""


class DomainProblem(ApiError):
    """A problem made from a domain exception by :data:`DOMAIN_PROBLEMS`."""

    def __init__(
        self,
        kind: ProblemType,
        detail: str,
        *,
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail, errors=errors, headers=headers)
        self.status, self.slug, self.title = kind.status, kind.slug, kind.title


def from_exception(exc: Exception) -> ApiError | None:
    """The problem a client sees for ``exc``; None for an exception no row names (a bug)."""
    if isinstance(exc, ApiError):
        return exc
    row = next((row for row in DOMAIN_PROBLEMS if isinstance(exc, row[0])), None)
    if row is None:
        return None
    _, problem, detail = row
    errors = {exc.field: [exc.reason]} if isinstance(exc, exceptions.InvalidOption) else None
    headers = None
    if isinstance(exc, exceptions.Unavailable):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return DomainProblem(problem, detail(exc), errors=errors, headers=headers)


def to_problem(exc: Exception) -> dict[str, Any]:
    """The problem body for ``exc`` (an internal error's if no row names it)."""
    problem = from_exception(exc) or ApiError("The service failed to handle this request.")
    return problem.to_problem()
