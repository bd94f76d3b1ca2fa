"""Admission control: how many requests a worker works on at once, and how long others wait.

Each worker takes at most ``limit`` inference requests at once; up to
``queue`` more wait, in arrival order, for at most ``wait_s`` (less if
their deadline is nearer). A request joins the queue only if, judged from
how long recent requests held their place, it should be admitted within
that wait: so a refusal is nearly always immediate, not the end of a wait
that was never going to succeed. Anything beyond is refused at once with
:class:`~adapter.exceptions.Overloaded`, which the HTTP edge answers as a
fast 503 ``overloaded`` with ``Retry-After``: a load balancer or client
goes elsewhere instead of queueing without bound behind a busy worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from adapter.exceptions import Overloaded

# Why a request was refused: the queue was full (or would not drain within
# the wait), or its wait ran out.
QUEUE_FULL = "queue_full"
WAIT_EXPIRED = "wait_expired"
# Weight of the latest hold time in the running mean the queue is judged by.
_SMOOTHING = 0.2


class Admission:
    """At most ``limit`` holders at once, ``queue`` waiters; thread-safe.

    ``on_refuse`` (default: none) is called with :data:`QUEUE_FULL` or
    :data:`WAIT_EXPIRED` for each refusal, outside the lock.
    """

    def __init__(
        self,
        limit: int,
        queue: int,
        wait_s: float,
        *,
        on_refuse: Callable[[str], None] | None = None,
    ) -> None:
        if limit < 1 or queue < 0 or wait_s < 0:
            raise ValueError(f"limit >= 1, queue >= 0, wait_s >= 0; got {limit}, {queue}, {wait_s}")
        self.limit, self.queue, self.wait_s = limit, queue, wait_s
        self.on_refuse = on_refuse
        self._lock = threading.Condition()
        self._holding = 0
        self._waiting = 0
        self._mean_hold_s = 0.0  # running mean of how long a place is held

    @property
    def mean_hold_s(self) -> float:
        """The running mean of how long an admitted request held its place."""
        with self._lock:
            return self._mean_hold_s

    @property
    def holding(self) -> int:
        """Requests admitted and not yet released."""
        with self._lock:
            return self._holding

    @property
    def waiting(self) -> int:
        """Requests waiting for a place."""
        with self._lock:
            return self._waiting

    def acquire(self, deadline_s: float | None = None) -> float:
        """Take a place, waiting at most ``wait_s`` (and ``deadline_s``); else :class:`Overloaded`.

        A request arriving while others wait queues behind them, so waiters
        are served in order (no barging). Returns the time it was admitted
        (``time.monotonic()``), for :meth:`release`.
        """
        wait_s = self.wait_s if deadline_s is None else max(0.0, min(self.wait_s, deadline_s))
        refused = self._take(wait_s)
        if refused is None:
            return time.monotonic()
        if self.on_refuse is not None:
            self.on_refuse(refused)
        raise Overloaded.at_capacity()

    def _take(self, wait_s: float) -> str | None:
        with self._lock:
            if self._holding < self.limit and not self._waiting:
                self._holding += 1
                return None
            # Its expected wait: the places ahead of it, each freed after a mean hold.
            expected_s = (self._waiting + 1) * self._mean_hold_s / self.limit
            if self._waiting >= self.queue or expected_s > wait_s:
                return QUEUE_FULL
            self._waiting += 1
            try:
                until = time.monotonic() + wait_s
                while self._holding >= self.limit:
                    left = until - time.monotonic()
                    if left <= 0:
                        if self._holding < self.limit:
                            self._lock.notify()  # a place freed as this wait ran out: pass it on
                        return WAIT_EXPIRED
                    self._lock.wait(left)
                self._holding += 1
                return None
            finally:
                self._waiting -= 1

    def release(self, admitted: float | None = None) -> None:
        """Give a place back, to the longest waiter if any.

        ``admitted`` is what :meth:`acquire` returned: the hold's length
        feeds the mean the queue is judged by.
        """
        held_s = None if admitted is None else time.monotonic() - admitted
        with self._lock:
            self._holding -= 1
            if held_s is not None:
                self._mean_hold_s += _SMOOTHING * (held_s - self._mean_hold_s)
            self._lock.notify()
