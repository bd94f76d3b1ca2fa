"""What phones and browsers send: every format, and photos stored sideways.

The shipped sample, re-encoded in each format and stored in each EXIF
orientation, must give the same answer in the pixels the user sees: the
displayed size, and every digit boxed where it is drawn.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image, ImageOps

from tests.helpers import box_tuple, iou, unmatched_digits, upload

SAMPLES = Path(__file__).resolve().parents[2] / "adapter" / "demo" / "samples"
DISPLAYED = np.asarray(Image.open(SAMPLES / "digits.jpg").convert("RGB"))
TRUTH = json.loads((SAMPLES / "digits.json").read_text())["digits"]
BOXES = [box_tuple(d["box"]) for d in TRUTH]
LABELS = [int(d["label"]) for d in TRUTH]

# How a camera stores a displayed picture for each EXIF orientation: the
# inverse of the turn that the orientation tells a viewer to apply.
STORED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, 1),  # displayed = stored turned 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, -1),
}


def _save(pixels: np.ndarray, fmt: str, orientation: int = 1, **params: object) -> bytes:
    image = Image.fromarray(np.ascontiguousarray(pixels))
    if fmt == "GIF":
        image = image.quantize(256)
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        params["exif"] = exif
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _assert_sample_answer(client: FlaskClient, data: bytes) -> None:
    response = client.post("/v1/models/digits/detect?min_score=0", data=upload(data))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["image"] == {"width": 1280, "height": 720}
    confident = [d for d in body["detections"] if d["score"] >= 0.5]
    assert len(unmatched_digits(confident, BOXES, LABELS)) <= 1
    boxes = [box_tuple(d["box"]) for d in body["detections"]]
    for square in BOXES:
        assert max(iou(box, square) for box in boxes) >= 0.5, square


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("JPEG", {"quality": 90, "progressive": True}),
        ("PNG", {}),
        ("WEBP", {"quality": 90}),
        ("WEBP", {"lossless": True}),
        ("GIF", {}),
        ("BMP", {}),
    ],
    ids=["jpeg-progressive", "png", "webp-lossy", "webp-lossless", "gif", "bmp"],
)
def test_every_format_gives_the_same_answer(
    client: FlaskClient, fmt: str, params: dict[str, object]
) -> None:
    _assert_sample_answer(client, _save(DISPLAYED, fmt, **params))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_sideways_photos_are_answered_as_displayed(
    client: FlaskClient, fmt: str, orientation: int
) -> None:
    stored = STORED[orientation](DISPLAYED)
    data = _save(stored, fmt, orientation, quality=92)
    with Image.open(io.BytesIO(data)) as check:  # a viewer shows the sample upright
        upright = np.asarray(ImageOps.exif_transpose(check).convert("RGB"), dtype=np.float64)
    assert upright.shape == DISPLAYED.shape
    assert np.abs(upright - DISPLAYED).mean() < 3
    _assert_sample_answer(client, data)


def test_anything_else_is_unsupported(client: FlaskClient) -> None:
    tiff = _save(DISPLAYED[:64, :64], "TIFF")
    response = client.post("/v1/models/digits/detect", data=upload(tiff, "photo.jpg"))
    assert response.status_code == 415
    assert response.get_json()["type"].endswith("/unsupported-image")
