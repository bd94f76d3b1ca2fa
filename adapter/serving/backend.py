"""One TF Serving backend as the rest of the adapter sees it: calls that never hang or hammer.

A :class:`Backend` wraps a transport (gRPC or REST) with the request's
deadline, client-side retries on UNAVAILABLE and a circuit breaker, and turns
every failure into one of :mod:`adapter.exceptions` (see
:data:`~adapter.exceptions.SERVING_FAILURES`). The
server's own messages go to the log only: they can name hosts and paths.
Failed calls and breaker changes are counted in :mod:`adapter.metrics`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import grpc
import numpy.typing as npt

from adapter import exceptions, metrics, tracing
from adapter.serving.resilience import (
    RETRYABLE,
    UNHEALTHY,
    CircuitBreaker,
    Deadline,
    RetryBudget,
    RetryPolicy,
)
from adapter.serving.servable import (
    ModelRef,
    Prediction,
    RpcFailure,
    SignatureDefs,
    Transport,
    VersionStatus,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


# A call that ran out of a budget shorter than this (a client asking for
# X-Request-Timeout-Ms: 5, say) says nothing of the server's health: it
# neither opens the circuit nor closes it.
TELLING_BUDGET_S = 0.25


class Backend:
    """A transport to one TF Serving target, with retries and a circuit breaker.

    ``name`` identifies the backend in logs, ``/readyz`` and the metrics'
    ``backend`` label (``grpc``, ``rest`` or the registry's name for it); it
    never reaches error bodies.
    """

    def __init__(
        self,
        name: str,
        transport: Transport,
        *,
        retry: RetryPolicy | None = None,
        budget: RetryBudget | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.name = name
        self.transport = transport
        self.retry = retry or RetryPolicy()
        self.budget = budget or RetryBudget()
        self.breaker = breaker or CircuitBreaker()
        if self.breaker.on_change is None:
            self.breaker.on_change = partial(metrics.breaker_state, name)
            metrics.breaker_state(name, self.breaker.state)

    def predict(
        self,
        model: ModelRef,
        inputs: Mapping[str, npt.NDArray[Any]],
        *,
        output_filter: Sequence[str],
        deadline: Deadline,
        version_requested: bool = False,
    ) -> Prediction:
        """Run Predict within ``deadline``; raises one of ``SERVING_FAILURES`` on failure."""
        return self._call(
            lambda timeout_s: self.transport.predict(
                model, inputs, output_filter=output_filter, timeout_s=timeout_s
            ),
            model,
            deadline,
            rpc="Predict",
            version_requested=version_requested,
        )

    def model_status(self, model: ModelRef, *, deadline: Deadline) -> list[VersionStatus]:
        """GetModelStatus within ``deadline``; raises one of ``SERVING_FAILURES`` on failure."""
        return self._call(
            lambda timeout_s: self.transport.model_status(model, timeout_s=timeout_s),
            model,
            deadline,
            rpc="GetModelStatus",
        )

    def signature_defs(self, model: ModelRef, *, deadline: Deadline) -> SignatureDefs:
        """GetModelMetadata within ``deadline``; raises one of ``SERVING_FAILURES`` on failure."""
        return self._call(
            lambda timeout_s: self.transport.signature_defs(model, timeout_s=timeout_s),
            model,
            deadline,
            rpc="GetModelMetadata",
        )

    def _call(
        self,
        call: Callable[[float], T],
        model: ModelRef,
        deadline: Deadline,
        *,
        rpc: str,
        version_requested: bool = False,
    ) -> T:
        if deadline.expired:
            raise exceptions.BackendTimeout("The request's deadline passed before the model ran.")
        self.breaker.acquire()  # CircuitOpen while the breaker is open
        self.budget.called()
        attempt = 1
        while True:
            budget_s = deadline.remaining()
            try:
                with tracing.client_span(
                    f"tensorflow.serving/{rpc}",
                    {
                        "rpc.system": "grpc",
                        "rpc.method": rpc,
                        "tfs.backend": self.name,
                        "tfs.model": model.name,
                        "tfs.attempt": attempt,
                    },
                ):
                    result = call(budget_s)
            except RpcFailure as failure:
                pause = None
                if failure.code in RETRYABLE and not failure.local:
                    pause = self.retry.pause_before(attempt, deadline)
                if pause is not None and not self.budget.spend():
                    log.info(
                        "backend %s: %s for %s, no retry: the retry budget is spent",
                        self.name, failure.code.name, model.describe(),
                    )  # fmt: skip
                    metrics.retry(self.name, metrics.BUDGET_SPENT)
                    pause = None
                elif pause is not None:
                    metrics.retry(self.name, metrics.RETRIED)
                if pause is not None:
                    log.info(
                        "backend %s: %s for %s, retry %d in %.0f ms",
                        self.name, failure.code.name, model.describe(), attempt, pause * 1000,
                    )  # fmt: skip
                    time.sleep(pause)
                    attempt += 1
                    continue
                expired = failure.code is grpc.StatusCode.DEADLINE_EXCEEDED
                if expired and budget_s < TELLING_BUDGET_S:
                    # The caller's budget was too short to say the server is slow.
                    self.breaker.record_inconclusive()
                elif failure.code in UNHEALTHY and not failure.local:
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success()
                metrics.backend_error(self.name, model.name, failure.code.name)
                raise to_failure(
                    failure, model, backend=self.name, version_requested=version_requested
                ) from None
            except Exception:
                # Never leave the breaker waiting on a probe that didn't report.
                log.exception("backend %s: call for %s failed", self.name, model.describe())
                self.breaker.record_failure()
                metrics.backend_error(self.name, model.name, grpc.StatusCode.UNKNOWN.name)
                raise exceptions.BackendError("The model server could not be called.") from None
            self.breaker.record_success()
            return result

    def set_message_limits(self, send_bytes: int, receive_bytes: int) -> None:
        """Let messages up to these sizes through from now on (see :class:`Transport`)."""
        self.transport.set_message_limits(send_bytes, receive_bytes)

    def close(self) -> None:
        """Close the transport's connections in this process."""
        self.transport.close()


def to_failure(
    failure: RpcFailure, model: ModelRef, *, backend: str, version_requested: bool = False
) -> Exception:
    """The exception a caller gets for a failed call; the server's details are logged only.

    NOT_FOUND is :class:`~adapter.exceptions.ModelVersionNotFound` when the
    request chose the version, and :class:`~adapter.exceptions.ModelNotServed`
    when the registry's own servable is missing: that is the operator's to fix.
    """
    code = failure.code
    log.warning(
        "backend %s: call for %s failed: %s %s",
        backend, model.describe(), code.name, failure.details,
    )  # fmt: skip
    if failure.local and code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        log.error("a message exceeded the gRPC size limit; see ADAPTER_GRPC_MAX_MESSAGE_BYTES")
        return exceptions.BackendMessageTooLarge(
            "The model's request or answer is larger than the configured message limit."
        )
    if code is grpc.StatusCode.NOT_FOUND:
        if version_requested:
            return exceptions.ModelVersionNotFound(
                "The model server does not serve the requested version of this model."
            )
        return exceptions.ModelNotServed("The model server does not serve this model (yet).")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        # CANCELLED comes from a server shutting down with the call in flight.
        return exceptions.BackendUnavailable("The model server is unavailable; retry shortly.")
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return exceptions.BackendOverloaded("The model server is overloaded; retry shortly.")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return exceptions.BackendTimeout("The model server did not answer within the deadline.")
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
        # We built the tensors: the backend rejecting them is our bug or a
        # registry/model mismatch, not the caller's fault.
        log.error("model server rejected a request built by the adapter: %s", failure.details)
        return exceptions.BackendRejected("The model server rejected the request.")
    return exceptions.BackendError("The model server could not run this request.")
