"""Deadlines, retries and the circuit breaker, alone and as Backend applies them to a transport.

Real time throughout (cooldowns and backoffs of a few tenths of a second at
most); the only stand-in is :class:`FakeTransport`, a transport whose failures
are scripted, because a real server can't be made to fail on cue.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest

from adapter.api import problems
from adapter.exceptions import SERVING_FAILURES
from adapter.serving.backend import Backend
from adapter.serving.resilience import CircuitBreaker, CircuitOpen, Deadline, RetryPolicy
from adapter.serving.servable import (
    ModelRef,
    Prediction,
    RpcFailure,
    SignatureDefs,
    Transport,
    VersionStatus,
)

Code = grpc.StatusCode
MODEL = ModelRef("digit_detector")
INPUTS = {"input_tensor": np.zeros((1, 4, 4, 3), dtype=np.uint8)}
ANSWER = Prediction(outputs={"num_detections": np.array([0.0], dtype=np.float32)}, model_version=1)


# --- Deadline -------------------------------------------------------------------------------


def test_deadline_counts_down_and_expires() -> None:
    deadline = Deadline(0.2)
    first = deadline.remaining()
    assert 0.15 < first <= 0.2
    assert not deadline.expired
    time.sleep(0.05)
    assert deadline.remaining() < first
    time.sleep(0.2)
    assert deadline.expired
    assert deadline.remaining() < 0


def test_deadline_of_zero_is_expired_at_once() -> None:
    assert Deadline(0).expired


def test_deadline_started_earlier_counts_from_its_start() -> None:
    deadline = Deadline(5.0, clock=time.monotonic() - 6.0)
    assert deadline.expired
    assert -1.1 < deadline.remaining() < -0.9


# --- RetryPolicy ----------------------------------------------------------------------------


def test_retry_gives_up_after_max_attempts() -> None:
    policy = RetryPolicy(max_attempts=4, base_backoff_s=0.001, max_backoff_s=0.001)
    roomy = Deadline(60)
    for attempt in (1, 2, 3):
        assert policy.pause_before(attempt, roomy) is not None
    assert policy.pause_before(4, roomy) is None
    assert policy.pause_before(5, roomy) is None


def test_a_single_attempt_policy_never_retries() -> None:
    assert RetryPolicy(max_attempts=1).pause_before(1, Deadline(60)) is None


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 6])
def test_pauses_are_full_jitter_below_the_capped_exponential(attempt: int) -> None:
    policy = RetryPolicy(max_attempts=10, base_backoff_s=0.05, max_backoff_s=0.5)
    ceiling = min(0.5, 0.05 * 2 ** (attempt - 1))
    roomy = Deadline(60)
    pauses = [policy.pause_before(attempt, roomy) for _ in range(2000)]
    values = [pause for pause in pauses if pause is not None]
    assert len(values) == len(pauses)
    assert all(0 <= pause <= ceiling for pause in values)
    # Full jitter: spread over the whole range, not a fixed or clustered pause.
    assert len(set(values)) > 1900
    assert min(values) < 0.1 * ceiling
    assert max(values) > 0.9 * ceiling
    assert abs(statistics.mean(values) - ceiling / 2) < 0.1 * ceiling


def test_no_pause_unless_the_deadline_leaves_room_for_an_attempt() -> None:
    policy = RetryPolicy(max_attempts=3, base_backoff_s=1.0, max_backoff_s=1.0, min_attempt_s=0.05)
    outcomes = [policy.pause_before(1, Deadline(0.5)) for _ in range(400)]
    given = [pause for pause in outcomes if pause is not None]
    # Pauses are drawn from [0, 1 s]; only those leaving 50 ms of a 0.5 s deadline are taken.
    assert given, "short pauses that fit the deadline must still be allowed"
    assert len(given) < len(outcomes), "pauses that don't fit the deadline must be refused"
    assert all(pause + 0.05 <= 0.5 for pause in given)


def test_no_retry_when_less_than_min_attempt_is_left() -> None:
    policy = RetryPolicy(base_backoff_s=1e-6, max_backoff_s=1e-6, min_attempt_s=0.02)
    assert all(policy.pause_before(1, Deadline(0.01)) is None for _ in range(100))


# --- CircuitBreaker -------------------------------------------------------------------------


def _open(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        breaker.record_failure()


def test_breaker_stays_closed_until_threshold_failures_in_a_row() -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=5)
    assert breaker.state == "closed"
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.acquire()  # still lets calls through
    breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.acquire()


def test_a_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=5)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.acquire()
    breaker.record_failure()
    assert breaker.state == "open"


def test_open_breaker_says_when_to_retry_rounded_up() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=1.3)
    breaker.record_failure()
    with pytest.raises(CircuitOpen) as first:
        breaker.acquire()
    assert first.value.retry_after_s == 2  # ceil(1.3)
    time.sleep(0.4)
    with pytest.raises(CircuitOpen) as later:
        breaker.acquire()
    assert later.value.retry_after_s == 1  # ceil(0.9)


def test_retry_after_is_at_least_one_second_for_short_cooldowns() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=0.2)
    breaker.record_failure()
    with pytest.raises(CircuitOpen) as info:
        breaker.acquire()
    assert info.value.retry_after_s == 1
    assert isinstance(info.value.retry_after_s, int)


def test_after_cooldown_exactly_one_concurrent_caller_is_let_through() -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=0.2)
    _open(breaker)
    time.sleep(0.25)
    assert breaker.state == "half_open"

    callers = 16
    barrier = threading.Barrier(callers)
    through: list[int] = []
    refused: list[CircuitOpen] = []
    lock = threading.Lock()

    def call(index: int) -> None:
        barrier.wait()
        try:
            breaker.acquire()
        except CircuitOpen as exc:
            with lock:
                refused.append(exc)
        else:
            with lock:
                through.append(index)

    threads = [threading.Thread(target=call, args=(index,)) for index in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert len(through) == 1
    assert len(refused) == callers - 1
    assert all(exc.retry_after_s >= 1 for exc in refused)
    assert breaker.state == "half_open"  # the probe is still out


def test_while_the_probe_is_out_later_callers_are_refused() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=0.2)
    breaker.record_failure()
    time.sleep(0.25)
    breaker.acquire()  # the probe
    for _ in range(3):
        with pytest.raises(CircuitOpen) as info:
            breaker.acquire()
        assert info.value.retry_after_s >= 1
    assert breaker.state == "half_open"


def test_probe_success_closes_the_circuit() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=0.2)
    breaker.record_failure()
    time.sleep(0.25)
    breaker.acquire()
    breaker.record_success()
    assert breaker.state == "closed"
    for _ in range(5):
        breaker.acquire()


def test_probe_failure_reopens_for_a_full_cooldown() -> None:
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=0.3)
    _open(breaker)
    time.sleep(0.35)
    breaker.acquire()
    breaker.record_failure()  # one failure is enough in half-open
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.acquire()
    time.sleep(0.2)  # the first cooldown is long over, the new one is not
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.acquire()
    time.sleep(0.15)
    assert breaker.state == "half_open"
    breaker.acquire()  # a new probe


def test_state_goes_closed_open_half_open_closed() -> None:
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=0.2)
    seen = [breaker.state]
    breaker.record_failure()
    seen.append(breaker.state)
    time.sleep(0.25)
    seen.append(breaker.state)
    breaker.acquire()
    seen.append(breaker.state)
    breaker.record_success()
    seen.append(breaker.state)
    assert seen == ["closed", "open", "half_open", "half_open", "closed"]


# --- Backend over a scripted transport ------------------------------------------------------


def fail(code: grpc.StatusCode, *, local: bool = False) -> RpcFailure:
    return RpcFailure(code, f"{code.name} from 10.0.0.7:8500 /models/secret", local=local)


class FakeTransport:
    """A Transport whose answers are scripted: each call takes the next outcome (the last repeats).

    An outcome is a value to return or an exception to raise. Every call's
    ``timeout_s`` and start time (monotonic) are recorded.
    """

    target = "fake:8500"

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.timeouts: list[float] = []
        self.started: list[float] = []

    @property
    def calls(self) -> int:
        return len(self.timeouts)

    def _next(self, timeout_s: float) -> Any:
        self.timeouts.append(timeout_s)
        self.started.append(time.monotonic())
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, RpcFailure):
            raise RpcFailure(outcome.code, outcome.details, local=outcome.local)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def predict(
        self,
        model: ModelRef,
        inputs: Mapping[str, npt.NDArray[Any]],
        *,
        output_filter: Sequence[str] = (),
        timeout_s: float,
    ) -> Prediction:
        result: Prediction = self._next(timeout_s)
        return result

    def model_status(self, model: ModelRef, *, timeout_s: float) -> list[VersionStatus]:
        result: list[VersionStatus] = self._next(timeout_s)
        return result

    def signature_defs(self, model: ModelRef, *, timeout_s: float) -> SignatureDefs:
        result: SignatureDefs = self._next(timeout_s)
        return result

    def close(self) -> None:
        pass


def _backend(
    transport: FakeTransport,
    *,
    attempts: int = 3,
    threshold: int = 5,
    cooldown_s: float = 0.2,
) -> Backend:
    checked: Transport = transport  # the fake really implements the protocol
    return Backend(
        "grpc",
        checked,
        retry=RetryPolicy(max_attempts=attempts, base_backoff_s=0.005, max_backoff_s=0.02),
        breaker=CircuitBreaker(failure_threshold=threshold, cooldown_s=cooldown_s),
    )


def _predict(backend: Backend, *, timeout_s: float = 2.0, version_requested: bool = False) -> Any:
    return backend.predict(
        MODEL,
        INPUTS,
        output_filter=(),
        deadline=Deadline(timeout_s),
        version_requested=version_requested,
    )


def _problem(exc: BaseException) -> problems.ApiError:
    """What a client sees for ``exc``: the HTTP edge's problem for it."""
    assert isinstance(exc, Exception)
    problem = problems.from_exception(exc)
    assert problem is not None, f"no problem type for {exc!r}"
    return problem


def _assert_problem(
    exc: BaseException, status: int, slug: str, headers: dict[str, str] | None = None
) -> None:
    problem = _problem(exc)
    assert (problem.status, problem.slug) == (status, slug)
    assert problem.headers == (headers or {})
    # The server's details (addresses, paths) stay in the logs.
    assert "10.0.0.7" not in problem.detail and "secret" not in problem.detail


@pytest.mark.parametrize("attempts", [1, 3, 5])
def test_unavailable_is_retried_up_to_max_attempts_then_503(attempts: int) -> None:
    transport = FakeTransport(fail(Code.UNAVAILABLE))
    with pytest.raises(SERVING_FAILURES) as info:
        _predict(_backend(transport, attempts=attempts))
    assert transport.calls == attempts
    _assert_problem(info.value, 503, "backend-unavailable", {"Retry-After": "1"})


def test_a_retry_that_succeeds_returns_the_answer() -> None:
    transport = FakeTransport(fail(Code.UNAVAILABLE), fail(Code.UNAVAILABLE), ANSWER)
    backend = _backend(transport, attempts=3, threshold=1)
    assert _predict(backend) is ANSWER
    assert transport.calls == 3
    assert backend.breaker.state == "closed"  # the call succeeded in the end


def test_every_backend_method_gets_the_retries() -> None:
    statuses = [VersionStatus(1, "AVAILABLE")]
    transport = FakeTransport(fail(Code.UNAVAILABLE), statuses)
    backend = _backend(transport)
    assert backend.model_status(MODEL, deadline=Deadline(2)) is statuses
    assert transport.calls == 2


@pytest.mark.parametrize(
    ("code", "status", "slug", "headers"),
    [
        (Code.DEADLINE_EXCEEDED, 504, "backend-timeout", {}),
        (Code.INVALID_ARGUMENT, 502, "backend-rejected-request", {}),
        (Code.FAILED_PRECONDITION, 502, "backend-rejected-request", {}),
        (Code.NOT_FOUND, 503, "model-not-served", {"Retry-After": "1"}),
        (Code.RESOURCE_EXHAUSTED, 503, "backend-overloaded", {"Retry-After": "1"}),
        (Code.CANCELLED, 503, "backend-unavailable", {"Retry-After": "1"}),
        (Code.INTERNAL, 502, "backend-error", {}),
    ],
)
def test_other_failures_are_not_retried(
    code: grpc.StatusCode, status: int, slug: str, headers: dict[str, str]
) -> None:
    transport = FakeTransport(fail(code), ANSWER)
    with pytest.raises(SERVING_FAILURES) as info:
        _predict(_backend(transport, attempts=5))
    assert transport.calls == 1
    _assert_problem(info.value, status, slug, headers)


def test_not_found_is_404_when_the_request_chose_the_version() -> None:
    transport = FakeTransport(fail(Code.NOT_FOUND))
    with pytest.raises(SERVING_FAILURES) as info:
        _predict(_backend(transport), version_requested=True)
    _assert_problem(info.value, 404, "model-version-not-found")
    assert transport.calls == 1


def test_message_over_the_size_limit_is_502_and_spares_the_breaker() -> None:
    transport = FakeTransport(fail(Code.RESOURCE_EXHAUSTED, local=True))
    backend = _backend(transport, attempts=3, threshold=2)
    for _ in range(4):
        with pytest.raises(SERVING_FAILURES) as info:
            _predict(backend)
        _assert_problem(info.value, 502, "backend-message-too-large")
    # Never retried, and four in a row leave a threshold-2 breaker closed.
    assert transport.calls == 4
    assert backend.breaker.state == "closed"


def test_the_breaker_opens_after_failed_calls_and_stops_reaching_the_backend() -> None:
    transport = FakeTransport(fail(Code.UNAVAILABLE))
    backend = _backend(transport, attempts=2, threshold=3, cooldown_s=0.3)
    for _ in range(3):
        with pytest.raises(SERVING_FAILURES) as info:
            _predict(backend)
        assert _problem(info.value).slug == "backend-unavailable"
    assert transport.calls == 6  # a failed call counts once, whatever its retries
    with pytest.raises(SERVING_FAILURES) as info:
        _predict(backend)
    _assert_problem(info.value, 503, "backend-circuit-open", {"Retry-After": "1"})
    assert transport.calls == 6


def test_the_breaker_counts_calls_that_fail_without_retry() -> None:
    transport = FakeTransport(fail(Code.DEADLINE_EXCEEDED))
    backend = _backend(transport, threshold=2)
    for _ in range(2):
        with pytest.raises(SERVING_FAILURES):
            _predict(backend)
    with pytest.raises(SERVING_FAILURES) as info:
        _predict(backend)
    assert _problem(info.value).slug == "backend-circuit-open"
    assert transport.calls == 2


def test_deadlines_too_short_to_tell_never_open_the_breaker() -> None:
    # A client asking for a 50 ms budget that runs out says nothing of the server.
    transport = FakeTransport(fail(Code.DEADLINE_EXCEEDED))
    backend = _backend(transport, threshold=2)
    for _ in range(5):
        with pytest.raises(SERVING_FAILURES) as info:
            _predict(backend, timeout_s=0.05)
        assert _problem(info.value).slug == "backend-timeout"
    assert transport.calls == 5
    assert backend.breaker.state == "closed"


def test_a_probe_whose_budget_was_too_short_leaves_the_circuit_open_for_the_next() -> None:
    breaker = CircuitBreaker(1, cooldown_s=0.05)
    breaker.record_failure()
    time.sleep(0.06)
    breaker.acquire()  # the probe
    breaker.record_inconclusive()
    assert breaker.state == "half_open"  # the cooldown has passed: the next call probes
    breaker.acquire()
    breaker.record_success()
    assert breaker.state == "closed"


def test_retry_after_of_an_open_circuit_is_the_cooldown_left() -> None:
    transport = FakeTransport(fail(Code.DEADLINE_EXCEEDED))
    backend = _backend(transport, threshold=1, cooldown_s=1.5)
    with pytest.raises(SERVING_FAILURES):
        _predict(backend)
    with pytest.raises(SERVING_FAILURES) as info:
        _predict(backend)
    _assert_problem(info.value, 503, "backend-circuit-open", {"Retry-After": "2"})


def test_bad_requests_do_not_open_the_breaker() -> None:
    transport = FakeTransport(fail(Code.INVALID_ARGUMENT))
    backend = _backend(transport, threshold=2)
    for _ in range(4):
        with pytest.raises(SERVING_FAILURES) as info:
            _predict(backend)
        assert _problem(info.value).slug == "backend-rejected-request"
    assert transport.calls == 4
    assert backend.breaker.state == "closed"


def test_after_the_cooldown_a_successful_probe_restores_service() -> None:
    transport = FakeTransport(fail(Code.UNAVAILABLE), fail(Code.UNAVAILABLE), ANSWER)
    backend = _backend(transport, attempts=1, threshold=2, cooldown_s=0.2)
    for _ in range(2):
        with pytest.raises(SERVING_FAILURES):
            _predict(backend)
    with pytest.raises(SERVING_FAILURES) as info:
        _predict(backend)
    assert _problem(info.value).slug == "backend-circuit-open"
    time.sleep(0.25)
    assert _predict(backend) is ANSWER  # the probe
    assert _predict(backend) is ANSWER
    assert transport.calls == 4


def test_after_the_cooldown_a_failed_probe_reopens_the_circuit() -> None:
    transport = FakeTransport(fail(Code.UNAVAILABLE))
    backend = _backend(transport, attempts=1, threshold=2, cooldown_s=0.2)
    for _ in range(2):
        with pytest.raises(SERVING_FAILURES):
            _predict(backend)
    time.sleep(0.25)
    with pytest.raises(SERVING_FAILURES) as info:
        _predict(backend)  # the probe reaches the backend and fails
    assert _problem(info.value).slug == "backend-unavailable"
    assert transport.calls == 3
    with pytest.raises(SERVING_FAILURES) as info:
        _predict(backend)
    assert _problem(info.value).slug == "backend-circuit-open"
    assert transport.calls == 3


def test_a_probe_that_raises_something_unexpected_does_not_wedge_the_breaker() -> None:
    transport = FakeTransport(
        fail(Code.UNAVAILABLE), fail(Code.UNAVAILABLE), OSError("name resolution failed"), ANSWER
    )
    backend = _backend(transport, attempts=1, threshold=2, cooldown_s=0.2)
    for _ in range(2):
        with pytest.raises(SERVING_FAILURES):
            _predict(backend)
    time.sleep(0.25)
    with pytest.raises(SERVING_FAILURES) as info:
        _predict(backend)  # the probe
    _assert_problem(info.value, 502, "backend-error")  # a 502, not a crashed request
    time.sleep(0.25)  # a full cooldown later, the backend must be tried again
    assert _predict(backend) is ANSWER


def test_an_expired_deadline_is_504_without_calling() -> None:
    transport = FakeTransport(ANSWER)
    backend = _backend(transport)
    with pytest.raises(SERVING_FAILURES) as info:
        backend.predict(MODEL, INPUTS, output_filter=(), deadline=Deadline(0))
    _assert_problem(info.value, 504, "backend-timeout")
    assert transport.calls == 0


def test_the_transport_gets_the_time_left_on_the_deadline() -> None:
    transport = FakeTransport(fail(Code.UNAVAILABLE), fail(Code.UNAVAILABLE), ANSWER)
    backend = Backend(
        "grpc",
        transport,
        retry=RetryPolicy(max_attempts=3, base_backoff_s=0.05, max_backoff_s=0.1),
    )
    deadline = Deadline(1.0)
    assert backend.predict(MODEL, INPUTS, output_filter=(), deadline=deadline) is ANSWER
    first, second, third = transport.timeouts
    assert 0.9 < first <= 1.0
    # Each attempt gets what is left: what the first got, less the time since it started.
    for timeout, started in zip(transport.timeouts[1:], transport.started[1:], strict=True):
        elapsed = started - transport.started[0]
        assert timeout <= first - elapsed + 0.002
        assert timeout >= first - elapsed - 0.02
    assert first > second > third


def test_retries_stop_when_the_deadline_leaves_no_room() -> None:
    transport = FakeTransport(fail(Code.UNAVAILABLE))
    backend = Backend(
        "grpc",
        transport,
        retry=RetryPolicy(max_attempts=100, base_backoff_s=0.05, max_backoff_s=0.05),
    )
    start = time.monotonic()
    with pytest.raises(SERVING_FAILURES) as info:
        backend.predict(MODEL, INPUTS, output_filter=(), deadline=Deadline(0.15))
    assert time.monotonic() - start < 0.15  # gave up before the deadline, not after it
    _assert_problem(info.value, 503, "backend-unavailable", {"Retry-After": "1"})
    assert 1 <= transport.calls < 100  # the deadline, not max_attempts, ended it
    assert all(timeout > 0 for timeout in transport.timeouts)


def test_circuit_open_retry_after_is_a_whole_number_of_seconds() -> None:
    transport = FakeTransport(fail(Code.UNAVAILABLE))
    backend = _backend(transport, attempts=1, threshold=1, cooldown_s=2.2)
    with pytest.raises(SERVING_FAILURES):
        _predict(backend)
    with pytest.raises(SERVING_FAILURES) as info:
        _predict(backend)
    retry_after = _problem(info.value).headers["Retry-After"]
    assert retry_after.isdigit()
    assert int(retry_after) == math.ceil(2.2)
