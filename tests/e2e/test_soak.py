"""A soak: mixed good, bad and huge requests at steady concurrency, and a worker that stays put.

One gunicorn worker, never recycled (``ADAPTER_MAX_REQUESTS=0``), takes four
clients (as many as it works on at once; overload is test_admission's)
cycling through detects and classifies (form, JSON, raw), corrupt and
non-image files, invalid options, unknown models, a 12 MP photo, an image
over the pixel limits and a body over the upload limit. Every answer must be
the status its request deserves (no 5xx at all), and from the first fifth of
the run to its end the worker's RSS must stay flat within 20 MB (the median
of each third of that window; single samples catch requests' buffers before
they are freed) and its open file descriptors must not grow.

``SOAK_SECONDS`` sets the length: 60 in the default run, 600 with ``make soak``
(RSS then compared from minute 2 to minute 10).
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import threading
import time
from collections.abc import Iterator

import psutil
import pytest
import requests

from adapter.modelserver.testing import ModelServer
from bench import loadclient, photos
from tests.e2e.backends import SAMPLES
from tests.helpers import adapter_under_gunicorn

SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
CLIENTS = 4
MAX_UPLOAD = 8 * 1024 * 1024
RSS_SLACK_MB = 20.0
SAMPLE_EVERY_S = 2.0
DIGITS = (SAMPLES / "digits.jpg").read_bytes()
SEVEN = (SAMPLES / "seven.png").read_bytes()


def _tall_png() -> bytes:
    """A small PNG 17000 pixels wide: over the 16384-pixel side limit, caught from its header."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (17000, 8), 255).save(out, "PNG")
    return out.getvalue()


def _mix(base: str) -> list[tuple[bytes, int]]:
    """Each request of the cycle, and the status it must get."""

    def form(path: str, content: bytes, name: str = "image.jpg", kind: str = "image/jpeg") -> bytes:
        body, content_type = loadclient.multipart("image", name, content, kind)
        return loadclient.request_bytes(base + path, body, headers={"Content-Type": content_type})

    def raw(path: str, content: bytes, kind: str) -> bytes:
        return loadclient.request_bytes(base + path, content, headers={"Content-Type": kind})

    detect, classify = "/v1/models/digits/detect", "/v1/models/digit-classes/classify"
    as_json = json.dumps({"image": {"b64": base64.b64encode(DIGITS).decode()}}).encode()
    photo = photos.jpeg(photos.photo(4000, 3000), quality=85)
    return [
        (form(detect, DIGITS), 200),
        (form(classify, SEVEN, "seven.png", "image/png"), 200),
        (raw(detect, as_json, "application/json"), 200),
        (raw(detect + "?min_score=0.9&max_results=3", DIGITS, "image/jpeg"), 200),
        (form(detect, photo), 200),  # a 12 MP phone photo
        (form(detect, DIGITS[: len(DIGITS) // 3]), 400),  # truncated
        (form(detect, b"just some text, not an image" * 10, "notes.txt", "text/plain"), 415),
        (raw(detect + "?min_score=2", DIGITS, "image/jpeg"), 422),
        (form("/v1/models/no-such-model/detect", DIGITS), 404),
        (form(detect, _tall_png(), "tall.png", "image/png"), 413),  # over the pixel limits
        (raw(detect, b"\xff\xd8" + b"\0" * (MAX_UPLOAD + 1), "image/jpeg"), 413),  # over the body
        (loadclient.request_bytes(base + "/readyz", method="GET"), 200),
    ]


@pytest.fixture(scope="module")
def soaked(model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    tuple[str, psutil.Process]
]:  # fmt: skip
    env = {
        "ADAPTER_MAX_REQUESTS": "0",
        "ADAPTER_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "ADAPTER_LOG_LEVEL": "WARNING",
    }
    log = tmp_path_factory.mktemp("soak") / "gunicorn.log"
    with adapter_under_gunicorn(model_server.target, env, log) as (url, process):
        (worker,) = psutil.Process(process.pid).children()
        yield url, worker


@pytest.mark.slow
def test_a_soak_gets_no_5xx_and_the_worker_holds_its_memory_and_descriptors(
    soaked: tuple[str, psutil.Process],
) -> None:
    url, worker = soaked
    mix = _mix(url)
    samples: list[tuple[float, float, int]] = []  # (seconds in, RSS MB, open fds)
    done = threading.Event()
    start = time.monotonic()

    def sample() -> None:
        while not done.wait(SAMPLE_EVERY_S):
            samples.append(
                (time.monotonic() - start, worker.memory_info().rss / 2**20, worker.num_fds())
            )

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        outcome = loadclient.run(url, [request for request, _ in mix], CLIENTS, SECONDS,
                                 keep_body=0)  # fmt: skip
    finally:
        done.set()
        sampler.join()
    assert not outcome.failures, outcome.failures[:3]
    wrong = [(a.request, a.status) for a in outcome.answers if a.status != mix[a.request][1]]
    refusals = [
        line
        for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines()
        if line.startswith("tfs_adapter_requests_refused_total{")
    ]
    assert not wrong, (len(wrong), wrong[:10], refusals)
    assert all(a.status < 500 for a in outcome.answers)
    served = sum(a.status == 200 for a in outcome.answers)
    assert served > SECONDS  # it was busy the whole time, not stuck
    window = [(rss, fds) for at, rss, fds in samples if at >= SECONDS / 5]
    rss = [value for value, _ in window]
    fds = [value for _, value in window]
    summary = (
        f"{len(outcome.answers)} answers ({served} 200s) in {outcome.wall_s:.0f} s; "
        f"RSS {min(rss):.1f}..{max(rss):.1f} MB, fds {min(fds)}..{max(fds)}"
    )
    print(summary)
    # Flat: the typical RSS of each third of the window within 20 MB of the others. One
    # sample may catch a request's buffers (a 12 MP photo, an 8 MB body) before they are
    # freed; a leak moves the medians.
    third = max(1, len(rss) // 3)
    medians = [statistics.median(rss[i : i + third]) for i in range(0, len(rss), third)]
    assert max(medians) - min(medians) <= RSS_SLACK_MB, (summary, medians)
    assert statistics.median(fds[-third:]) <= statistics.median(fds[:third]) + 2, summary
