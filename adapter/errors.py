"""The exception tree of the HTTP API and its RFC 9457 problem+json form.

Every error a client can see is an :class:`ApiError` subclass with a status,
a stable problem ``type`` and a short ``title``; ``detail`` is written for the
caller and never carries stack traces, file paths or backend addresses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


class UnknownModel(ApiError):
    """The model name is not in the registry, or the backend doesn't serve it (404)."""

    status, slug, title = 404, "unknown-model", "Unknown model"


class MethodNotAllowed(ApiError):
    """The route exists but not for this HTTP method (405)."""

    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class NotAcceptable(ApiError):
    """The ``Accept`` header asks for no representation this endpoint has (406)."""

    status, slug, title = 406, "not-acceptable", "Not acceptable"


class PayloadTooLarge(ApiError):
    """The upload is larger than the configured limit (413)."""

    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedImage(ApiError):
    """The upload is not an image format the service decodes (415)."""

    status, slug, title = 415, "unsupported-image", "Unsupported image"


class UnsupportedMediaType(ApiError):
    """The request body's ``Content-Type`` is not one the endpoint reads (415)."""

    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class InvalidImage(ApiError):
    """The upload is empty, truncated or corrupt (400)."""

    status, slug, title = 400, "invalid-image", "Invalid image"


class ImageTooLarge(ApiError):
    """The image's dimensions exceed the configured limits (413)."""

    status, slug, title = 413, "image-too-large", "Image too large"


class ValidationFailed(ApiError):
    """A request option or field is invalid; ``errors`` names each field (422)."""

    status, slug, title = 422, "validation-failed", "Invalid request options"


class ModelVersionNotFound(ApiError):
    """The version or label the request asked for is not served (404)."""

    status, slug, title = 404, "model-version-not-found", "Model version not found"


class BackendError(ApiError):
    """TF Serving failed in a way retrying won't fix (INTERNAL, UNKNOWN, ...) (502)."""

    status, slug, title = 502, "backend-error", "Model server error"


class BackendRejected(BackendError):
    """TF Serving answered INVALID_ARGUMENT or FAILED_PRECONDITION to our request (502).

    The adapter built that request, so this is a registry/model mismatch or a bug.
    """

    slug, title = "backend-rejected-request", "Model server rejected the request"


class BackendMessageTooLarge(BackendError):
    """A request or answer exceeded a gRPC message size limit (502)."""

    slug, title = "backend-message-too-large", "Model server message too large"


class BackendUnavailable(ApiError):
    """TF Serving is unreachable; retry after ``Retry-After`` (503)."""

    status, slug, title = 503, "backend-unavailable", "Model server unavailable"

    def __init__(self, detail: str, *, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class BackendOverloaded(BackendUnavailable):
    """TF Serving answered RESOURCE_EXHAUSTED: it is overloaded (503)."""

    slug, title = "backend-overloaded", "Model server overloaded"


class CircuitOpen(BackendUnavailable):
    """Recent calls to this backend failed; calls are paused until ``Retry-After`` (503)."""

    slug, title = "backend-circuit-open", "Model server calls paused"


class ModelNotServed(BackendUnavailable):
    """The registry's model or version is not (yet) loaded by TF Serving (503)."""

    slug, title = "model-not-served", "Model not served"


class ModelNotReady(BackendUnavailable):
    """The model's live signature does not match the registry, or isn't read yet (503)."""

    slug, title = "model-not-ready", "Model not ready"


class BackendTimeout(ApiError):
    """TF Serving did not answer within the deadline (504)."""

    status, slug, title = 504, "backend-timeout", "Model server timeout"


class NotReady(ApiError):
    """The service can't serve yet: a model is not available (503)."""

    status, slug, title = 503, "not-ready", "Not ready"
