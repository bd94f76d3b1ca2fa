"""Deadlines, retries and the circuit breaker: how the adapter treats a sick backend.

* :class:`Deadline`: one per request, started when it arrives; every backend
  call gets the time that is left, never more.
* :class:`RetryPolicy`: only UNAVAILABLE is retried (the request never ran,
  or the server is restarting), with full-jitter exponential backoff, and only
  while the deadline leaves room for the pause and a useful attempt. This is
  done here and not by gRPC's service-config retries, whose replay buffer
  (256 KiB) is smaller than most image tensors.
* :class:`RetryBudget`: retries are also bounded in total, to a share of the
  calls (10 %, plus a small reserve), as gRPC's retry throttling and
  Finagle's retry budgets do: when the model server is overloaded and
  answers UNAVAILABLE to everyone, retries add at most that share to its
  load instead of multiplying it by the attempts.
* :class:`CircuitBreaker`: after ``failure_threshold`` failed calls in a row
  it opens, and calls fail at once for ``cooldown_s``; then one probe call
  goes through (half-open): success closes it, failure opens it again.
  ``on_change`` hears each change (the metrics' breaker gauge listens).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from adapter.exceptions import CircuitOpen

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE})
# Failures that say the backend is unwell (as opposed to a bad request).
UNHEALTHY = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


class Deadline:
    """A point in time (monotonic) by which a request must be answered."""

    def __init__(self, timeout_s: float, *, clock: float | None = None) -> None:
        self.timeout_s = timeout_s
        self.expires_at = (time.monotonic() if clock is None else clock) + timeout_s

    def remaining(self) -> float:
        """Seconds left (negative once expired)."""
        return self.expires_at - time.monotonic()

    @property
    def expired(self) -> bool:
        """True once no time is left."""
        return self.remaining() <= 0


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_attempts`` calls; pauses of up to base x 2^n seconds (capped), jittered.

    Defaults: 3 attempts, 50 ms base, 1 s cap; an attempt is only started with
    at least ``min_attempt_s`` (20 ms) of the deadline left after the pause.
    """

    max_attempts: int = 3
    base_backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    min_attempt_s: float = 0.02

    def pause_before(self, attempt: int, deadline: Deadline) -> float | None:
        """Seconds to wait before attempt number ``attempt`` (1-based), or None to give up."""
        if attempt >= self.max_attempts:
            return None
        ceiling = min(self.max_backoff_s, self.base_backoff_s * 2 ** (attempt - 1))
        pause = random.uniform(0, ceiling)
        if deadline.remaining() < pause + self.min_attempt_s:
            return None
        return pause


_MILLI = 1000


class RetryBudget:
    """Retries as a share of calls: each call earns ``ratio`` of a retry, each retry spends one.

    Starts with (and never holds more than) ``reserve`` retries, so a quiet
    service can still retry a blip; under sustained failure, retries are at
    most ``ratio`` of the calls plus ``reserve``. Per backend and per
    worker; thread-safe. ``ratio`` 0 allows only the reserve, once.
    """

    def __init__(self, ratio: float = 0.1, reserve: float = 10.0) -> None:
        if ratio < 0 or reserve < 1:
            raise ValueError(f"ratio >= 0 and reserve >= 1; got {ratio}, {reserve}")
        self.ratio, self.reserve = ratio, reserve
        # Kept in thousandths of a retry: ten calls at 0.1 make exactly one.
        self._earned, self._most = round(ratio * _MILLI), round(reserve * _MILLI)
        self._tokens = self._most
        self._lock = threading.Lock()

    @property
    def available(self) -> float:
        """Retries that may be made now."""
        with self._lock:
            return self._tokens / _MILLI

    def called(self) -> None:
        """A first attempt was made: it earns ``ratio`` of a retry."""
        with self._lock:
            self._tokens = min(self._most, self._tokens + self._earned)

    def spend(self) -> bool:
        """Take one retry if the budget has it; False (and nothing taken) if not."""
        with self._lock:
            if self._tokens < _MILLI:
                return False
            self._tokens -= _MILLI
            return True


class CircuitBreaker:
    """Per backend and per worker: closed → open → half-open (one probe) → closed or open.

    Defaults: opens after 5 failures in a row, stays open 5 s. Thread-safe.
    ``on_change`` (default: none) is called with the new state, under the
    breaker's lock so calls arrive in order, whenever a call changes it:
    ``open`` when it opens, ``half_open`` when the probe is let through,
    ``closed`` when it closes. It must be quick and must not call the breaker.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_s: float = 5.0,
        *,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.on_change = on_change
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._reported = "closed"

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        with self._lock:
            return self._state(time.monotonic())

    def _state(self, now: float) -> str:
        if self._opened_at is None:
            return "closed"
        if self._probing or now - self._opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def acquire(self) -> None:
        """Let a call through, or raise :class:`CircuitOpen` (the one probe is let through)."""
        with self._lock:
            now = time.monotonic()
            if self._opened_at is None:
                return
            waited = now - self._opened_at
            if waited >= self.cooldown_s and not self._probing:
                self._probing = True  # this caller is the probe
                self._report()
                return
            left = self.cooldown_s - waited if waited < self.cooldown_s else self.cooldown_s
            raise CircuitOpen(
                "Recent calls to the model server failed; calls are paused briefly.",
                retry_after_s=max(1, math.ceil(left)),
            )

    def record_success(self) -> None:
        """The backend answered (even with an error about the request): close the circuit."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False
            self._report()

    def record_inconclusive(self) -> None:
        """A call that says nothing of the backend's health (a deadline too short to
        tell): the count of failures stays, and a probe ends undecided, so the
        next call after the cooldown probes again."""
        with self._lock:
            if self._probing:
                self._probing = False
                self._report()

    def record_failure(self) -> None:
        """A call failed in a way that says the backend is unwell; maybe open the circuit."""
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.failure_threshold:
                self._opened_at = time.monotonic()
                self._probing = False
                self._report()

    def _report(self) -> None:
        """Tell ``on_change`` about a new state (call with the lock held).

        Event-driven, unlike :attr:`state`: an open breaker whose cooldown has
        passed is reported half-open only once a call is let through as the probe.
        """
        state = "half_open" if self._probing else "open"
        if self._opened_at is None:
            state = "closed"
        if state != self._reported:
            self._reported = state
            if self.on_change is not None:
                self.on_change(state)
