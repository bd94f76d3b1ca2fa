"""The retry budget: retries on UNAVAILABLE add at most a tenth to an overloaded server's load.

An overloaded TF Serving answers UNAVAILABLE to everyone (its batching
queue is full); the local model server has no such state, so this runs a
real gRPC server in-process that answers every Predict so, and counts the
calls that reach it: through the adapter's real gRPC client and Backend.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import numpy as np
import pytest

from adapter.exceptions import SERVING_FAILURES
from adapter.serving.backend import Backend
from adapter.serving.grpc_client import GrpcClient
from adapter.serving.resilience import CircuitBreaker, Deadline, RetryBudget, RetryPolicy
from adapter.serving.servable import ModelRef

CALLS = 300
INPUTS = {"input_tensor": np.zeros((1, 4, 4, 3), dtype=np.uint8)}


class Overloaded:
    """A PredictionService whose every Predict is UNAVAILABLE, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def predict(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._lock:
            self.calls += 1
        context.abort(grpc.StatusCode.UNAVAILABLE, "the batching queue is full")
        return b""


@pytest.fixture
def overloaded() -> Iterator[tuple[str, Overloaded]]:
    service = Overloaded()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService",
        {"Predict": grpc.unary_unary_rpc_method_handler(service.predict)},
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", service
    server.stop(grace=None)


def _hammer(target: str, budget: RetryBudget) -> None:
    backend = Backend(
        "grpc",
        GrpcClient(target),
        retry=RetryPolicy(max_attempts=3, base_backoff_s=0.001, max_backoff_s=0.002),
        budget=budget,
        breaker=CircuitBreaker(failure_threshold=10 * CALLS),  # the budget alone is tested
    )
    try:
        for _ in range(CALLS):
            with pytest.raises(SERVING_FAILURES):
                backend.predict(
                    ModelRef("detector"), INPUTS, output_filter=(), deadline=Deadline(2.0)
                )
    finally:
        backend.close()


def test_retries_add_at_most_a_tenth_to_an_overloaded_servers_calls(
    overloaded: tuple[str, Overloaded],
) -> None:
    target, server = overloaded
    _hammer(target, RetryBudget())
    assert CALLS < server.calls <= CALLS * 1.1 + 10, server.calls


def test_without_the_budget_every_call_would_be_tripled(
    overloaded: tuple[str, Overloaded],
) -> None:
    target, server = overloaded
    _hammer(target, RetryBudget(ratio=2.0, reserve=3))  # two retries earned per call
    assert server.calls == CALLS * 3


def test_the_budget_earns_a_share_per_call_and_keeps_a_reserve() -> None:
    budget = RetryBudget(ratio=0.1, reserve=2)
    assert budget.spend() and budget.spend() and not budget.spend()
    for _ in range(9):
        budget.called()
    assert not budget.spend()  # 0.9 of a retry
    budget.called()
    assert budget.spend()
    for _ in range(1000):
        budget.called()
    assert budget.available == 2  # never more than the reserve


@pytest.mark.parametrize(("ratio", "reserve"), [(-0.1, 10), (0.1, 0.5)])
def test_nonsense_budgets_are_refused(ratio: float, reserve: float) -> None:
    with pytest.raises(ValueError):
        RetryBudget(ratio, reserve)
