"""What can go wrong in the service, as ordinary Python exceptions with no HTTP in them.

The core (:mod:`adapter.service`, the pipeline, the catalog, serving) raises
these; the HTTP layer's one table (:mod:`adapter.api.problems`) gives each its
status and problem type. Each class subclasses the standard exception that
says what it is (``LookupError`` for a missing thing, ``ValueError`` for a
bad value, ``ConnectionError``, ``TimeoutError``), as orjson's and
cryptography's do, so callers outside HTTP can catch them the usual way.

Messages are written for the API's caller: they never carry stack traces,
file paths or backend addresses (those go to the log). Bad images raise the
:class:`adapter.imaging.ImageError` family, which lives beside the decoder.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """The environment or the registry file is invalid; the message says where."""


class UnknownModel(LookupError):
    """The registry has no model of this name."""


class WrongTask(LookupError):
    """The model exists, but is not of the task asked for (a classifier asked to detect)."""


class InvalidOption(ValueError):
    """A request option names something the model does not have; ``field`` is the option."""

    def __init__(self, message: str, *, field: str, reason: str) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason


class ModelRejectedImage(ValueError):
    """A model that decodes the original bytes itself could not decode this image."""


class ModelVersionNotFound(LookupError):
    """The version or label the request asked for is not served."""


class Unavailable(RuntimeError):
    """The service can't do this now; trying again after ``retry_after_s`` may work."""

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Overloaded(Unavailable):
    """This worker has as many requests in hand as it takes, and no place freed in time."""

    @classmethod
    def at_capacity(cls) -> Overloaded:
        """The one refusal there is, worded for the caller."""
        return cls(
            "The service is at capacity; retry after the time in Retry-After, "
            "or at another replica."
        )


class BackendUnavailable(Unavailable, ConnectionError):
    """TF Serving is unreachable."""


class BackendOverloaded(BackendUnavailable):
    """TF Serving answered RESOURCE_EXHAUSTED: it is overloaded."""


class CircuitOpen(BackendUnavailable):
    """Recent calls to this backend failed; calls are paused for ``retry_after_s``."""


class ModelNotServed(Unavailable):
    """The registry's own model or version is not (yet) loaded by TF Serving."""


class ModelNotReady(Unavailable):
    """The model's live signature does not match the registry, or could not be read."""


class BackendTimeout(TimeoutError):
    """TF Serving did not answer within the request's deadline."""


class BackendError(RuntimeError):
    """TF Serving failed in a way retrying won't fix, or answered something unusable."""


class BackendRejected(BackendError):
    """TF Serving answered INVALID_ARGUMENT or FAILED_PRECONDITION to a request we built.

    The adapter built that request, so this is a registry/model mismatch or a bug.
    """


class BackendMessageTooLarge(BackendError):
    """A request or answer exceeded a gRPC message size limit."""


SERVING_FAILURES: tuple[type[Exception], ...] = (
    Unavailable,
    BackendTimeout,
    BackendError,
    ModelVersionNotFound,
)
"""Everything a call to TF Serving (:class:`adapter.serving.backend.Backend`) can raise."""
