"""Admission control: a bounded number of requests at once, a bounded queue, a bounded wait."""

from __future__ import annotations

import threading
import time

import pytest

from adapter.admission import QUEUE_FULL, WAIT_EXPIRED, Admission
from adapter.exceptions import Overloaded, Unavailable


def _refusals() -> tuple[list[str], Admission]:
    refused: list[str] = []
    return refused, Admission(2, 1, 5.0, on_refuse=refused.append)


def test_the_places_are_taken_then_one_waits_then_the_rest_are_refused_at_once() -> None:
    refused, admission = _refusals()
    admission.acquire()
    admission.acquire()
    assert admission.holding == 2
    waiter = threading.Thread(target=admission.acquire)
    waiter.start()
    while admission.waiting == 0:
        time.sleep(0.001)
    start = time.monotonic()
    with pytest.raises(Overloaded) as caught:
        admission.acquire()  # the queue is full: no wait at all
    assert time.monotonic() - start < 0.05
    assert isinstance(caught.value, Unavailable)  # a 503 with Retry-After
    assert caught.value.retry_after_s == 1
    assert refused == [QUEUE_FULL]
    admission.release()  # the waiter takes the freed place
    waiter.join(timeout=5)
    assert not waiter.is_alive()
    assert (admission.holding, admission.waiting) == (2, 0)


def test_a_wait_ends_at_the_admission_bound_or_the_deadline_whichever_is_first() -> None:
    refused: list[str] = []
    admission = Admission(1, 4, 0.2, on_refuse=refused.append)
    admission.acquire()
    for deadline_s, expected_s in ((None, 0.2), (0.05, 0.05), (-1.0, 0.0)):
        start = time.monotonic()
        with pytest.raises(Overloaded):
            admission.acquire(deadline_s)
        waited = time.monotonic() - start
        assert expected_s <= waited < expected_s + 0.1, (deadline_s, waited)
    assert refused == [WAIT_EXPIRED] * 3
    assert admission.waiting == 0


def test_waiters_are_served_in_arrival_order_and_newcomers_do_not_jump_the_queue() -> None:
    admission = Admission(1, 3, 5.0)
    admission.acquire()
    order: list[int] = []

    def wait_then_note(number: int) -> None:
        admission.acquire()
        order.append(number)

    threads = []
    for number in range(3):
        thread = threading.Thread(target=wait_then_note, args=(number,))
        thread.start()
        threads.append(thread)
        while admission.waiting < number + 1:
            time.sleep(0.001)
    for _ in range(3):
        admission.release()
        while admission.holding == 0:
            time.sleep(0.001)
    for thread in threads:
        thread.join(timeout=5)
    assert order == [0, 1, 2]


def test_no_place_is_lost_under_contention() -> None:
    admission = Admission(3, 8, 2.0)
    most = 0
    lock = threading.Lock()
    holding = 0

    def work() -> None:
        nonlocal most, holding
        for _ in range(50):
            try:
                admission.acquire()
            except Overloaded:
                continue
            with lock:
                holding += 1
                most = max(most, holding)
            time.sleep(0.0005)
            with lock:
                holding -= 1
            admission.release()

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert most == 3
    assert (admission.holding, admission.waiting) == (0, 0)


@pytest.mark.parametrize("arguments", [(0, 1, 1.0), (1, -1, 1.0), (1, 1, -0.1)])
def test_nonsense_bounds_are_refused(arguments: tuple[int, int, float]) -> None:
    with pytest.raises(ValueError):
        Admission(*arguments)


def test_a_request_that_would_not_be_admitted_within_the_wait_is_refused_at_once() -> None:
    refused: list[str] = []
    admission = Admission(1, 4, 0.1, on_refuse=refused.append)
    for _ in range(20):  # places held for about 60 ms each
        admitted = admission.acquire()
        time.sleep(0.06)
        admission.release(admitted)
    assert 0.05 < admission.mean_hold_s < 0.1
    admission.acquire()
    waiter = threading.Thread(target=admission.acquire)
    waiter.start()  # one place ahead: expected to wait 60 ms, within the 100 ms bound
    while admission.waiting == 0:
        time.sleep(0.001)
    start = time.monotonic()
    with pytest.raises(Overloaded):
        admission.acquire()  # two ahead: 120 ms expected, past the bound, so no wait at all
    assert time.monotonic() - start < 0.02
    assert refused == [QUEUE_FULL]
    admission.release()
    waiter.join(timeout=5)
    assert not waiter.is_alive() and refused == [QUEUE_FULL]
