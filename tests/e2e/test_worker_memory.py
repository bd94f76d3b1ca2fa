"""A worker reuses the memory its answered requests freed (adapter.process.keep_freed_memory).

By default glibc hands a large freed buffer back to the kernel, and every
upload then pays a page fault per 4 KiB of each of its copies again (for a
12 MP photo, ~1,900 faults and ~5 ms of the worker's CPU per request). The
worker's page faults are counted by the kernel: no clock involved.

Each of the worker's threads allocates from an arena of its own, and which
idle thread takes a request is up to the scheduler: the warm-up keeps every
thread busy at once, so each arena has seen a request's buffers before the
faults are counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests

from adapter.modelserver.testing import ModelServer
from bench import photos
from tests.helpers import adapter_under_gunicorn

PATH = "/v1/models/digits/detect"
THREADS = 4


@pytest.fixture(scope="module")
def worker(model_server: ModelServer) -> Iterator[tuple[str, psutil.Process]]:
    env = {"ADAPTER_THREADS": str(THREADS)}
    with adapter_under_gunicorn(model_server.target, env) as (url, process):
        (child,) = psutil.Process(process.pid).children()
        yield url, child


def _minor_faults(process: psutil.Process) -> int:
    with open(f"/proc/{process.pid}/stat") as stat:  # field 10: minflt
        return int(stat.read().rsplit(")", 1)[1].split()[7])


def test_uploads_after_the_first_few_take_almost_no_new_pages(
    worker: tuple[str, psutil.Process],
) -> None:
    url, process = worker
    photo = photos.jpeg(photos.photo(2400, 1800), quality=90)  # ~1 MB, 2.7 MB of pixels
    files = {"image": ("photo.jpg", photo, "image/jpeg")}

    def answer(_: int) -> int:
        return requests.post(url + PATH, files=files, timeout=30).status_code

    with ThreadPoolExecutor(THREADS) as clients:  # every thread's high-water mark
        assert set(clients.map(answer, range(3 * THREADS))) == {200}
    before = _minor_faults(process)
    for _ in range(10):
        assert answer(0) == 200
    per_request = (_minor_faults(process) - before) / 10
    # Without the reuse: ~700 per request (a page per 4 KiB of the body's,
    # the image's and the tensor's fresh buffers); with it, a few (metrics, logs).
    assert per_request < 100, per_request
