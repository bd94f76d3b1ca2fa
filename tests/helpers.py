"""Helpers the test files share: encoding images, uploads, IoU, problem bodies, gunicorn."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from adapter.local import adapter_command, spawn, stop, wait_for_http
from adapter.modelserver.testing import free_port

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def encode(image: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """Encode an RGB uint8 array as ``JPEG`` or ``PNG`` bytes."""
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt == "JPEG" else {}
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def upload(data: bytes, filename: str = "image") -> dict[str, Any]:
    """A multipart form with ``data`` as its ``image`` file part."""
    return {"image": (io.BytesIO(data), filename)}


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x_min, y_min, x_max, y_max) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_tuple(box: dict[str, float]) -> tuple[float, float, float, float]:
    """The API's ``{x_min, y_min, x_max, y_max}`` as a tuple."""
    return box["x_min"], box["y_min"], box["x_max"], box["y_max"]


def unmatched_digits(
    detections: list[dict[str, Any]],
    truth_boxes: Sequence[Sequence[float]],
    truth_labels: Sequence[int],
    min_iou: float = 0.5,
) -> list[int]:
    """Indices of drawn digits no detection found with the right label and IoU >= min_iou.

    Each detection may match one digit only (greedy, best IoU first).
    """
    pairs = sorted(
        (
            (iou(box_tuple(det["box"]), truth), d, t)
            for d, det in enumerate(detections)
            for t, truth in enumerate(truth_boxes)
            if det["label"] == str(truth_labels[t])
        ),
        reverse=True,
    )
    used_d: set[int] = set()
    matched: set[int] = set()
    for overlap, d, t in pairs:
        if overlap >= min_iou and d not in used_d and t not in matched:
            used_d.add(d)
            matched.add(t)
    return [t for t in range(len(truth_boxes)) if t not in matched]


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    """Assert an RFC 9457 problem+json answer with ``status``; return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    if slug is not None:
        assert body["type"].endswith("/" + slug)
    text = response.get_data(as_text=True)
    for leak in ("Traceback", "/work/", "site-packages", "127.0.0.1", "localhost"):
        assert leak not in text
    return body


@contextmanager
def adapter_under_gunicorn(
    target: str, env: Mapping[str, str] | None = None, log: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The adapter under real gunicorn (one worker) on ``target``'s model server, once ready.

    ``env`` adds to the environment; ``log`` (default: this terminal) receives
    gunicorn's output. Yields the URL and the gunicorn process; a clean stop after.
    """
    port = free_port()
    environ = {**os.environ, "ADAPTER_TFS_TARGET": target, **(env or {})}
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(log.open("wb")) if log is not None else None
        process = spawn(adapter_command(port, workers=1), environ, output=sink)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{url}/readyz", [process], timeout_s=60)
            yield url, process
        finally:
            assert stop(process) == 0
