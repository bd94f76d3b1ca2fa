"""The demo SavedModels meet their quality bars on held-out digits (samples 1500-1796)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

from adapter.modelserver.demo_models import build, canvas, evaluation  # noqa: E402

MIN_MAP = 0.9
MIN_ACCURACY = 0.95
CANVASES = 60


def _signature(models: Path, name: str):  # type: ignore[no-untyped-def]
    return tf.saved_model.load(str(models / name / "1")).signatures["serving_default"]


def test_signatures_are_the_documented_ones(demo_models_dir: Path) -> None:
    detector = _signature(demo_models_dir, "digit_detector")
    [spec] = detector.structured_input_signature[1].values()
    assert (spec.name, spec.dtype, spec.shape.as_list()) == (
        "input_tensor",
        tf.uint8,
        [None] * 3 + [3],
    )
    outputs = detector.structured_outputs
    assert {k: (v.dtype, v.shape.as_list()) for k, v in outputs.items()} == {
        "detection_boxes": (tf.float32, [None, 100, 4]),
        "detection_classes": (tf.float32, [None, 100]),
        "detection_scores": (tf.float32, [None, 100]),
        "num_detections": (tf.float32, [None]),
    }
    for name, key, dtype, shape in (
        ("digit_classifier", "images", tf.float32, [None, 32, 32, 3]),
        ("digit_classifier_bytes", "image_bytes", tf.string, [None]),
    ):
        signature = _signature(demo_models_dir, name)
        [spec] = signature.structured_input_signature[1].values()
        assert (spec.name, spec.dtype, spec.shape.as_list()) == (key, dtype, shape)
        assert {
            k: (v.dtype, v.shape.as_list()) for k, v in signature.structured_outputs.items()
        } == {
            "classes": (tf.int64, [None]),
            "probabilities": (tf.float32, [None, 11]),
        }


def test_detector_map_on_held_out_canvases(demo_models_dir: Path) -> None:
    detector = _signature(demo_models_dir, "digit_detector")
    rng = np.random.default_rng(1500)
    found, truths = [], []
    for _ in range(CANVASES):
        drawn = canvas.make_canvas(rng, 320, 320)
        out = detector(input_tensor=tf.constant(drawn.image[None]))
        count = int(out["num_detections"][0])
        view = evaluation.View(drawn.image, 1.0, 1.0)
        found.append(
            evaluation.Detections(
                view.to_canvas(out["detection_boxes"][0, :count].numpy()),
                out["detection_classes"][0, :count].numpy().astype(int) - 1,
                out["detection_scores"][0, :count].numpy(),
            )
        )
        truths.append((np.array(drawn.boxes), np.array(drawn.labels)))
    assert evaluation.mean_average_precision(found, truths) >= MIN_MAP


def test_detector_answers_a_batch_per_image(demo_models_dir: Path) -> None:
    detector = _signature(demo_models_dir, "digit_detector")
    rng = np.random.default_rng(7)
    images = [canvas.make_canvas(rng, 320, 320, max_digits=3) for _ in range(3)]
    batch = detector(input_tensor=tf.constant(np.stack([c.image for c in images])))
    for i, drawn in enumerate(images):
        single = detector(input_tensor=tf.constant(drawn.image[None]))
        assert int(batch["num_detections"][i]) == int(single["num_detections"][0])
        np.testing.assert_allclose(
            batch["detection_scores"][i], single["detection_scores"][0], atol=1e-5
        )


@pytest.mark.parametrize("name", ["digit_classifier", "digit_classifier_bytes"])
def test_classifier_accuracy_on_held_out_digits(demo_models_dir: Path, name: str) -> None:
    signature = _signature(demo_models_dir, name)
    targets = canvas.digits()[1]
    rng = np.random.default_rng(297)
    correct = 0
    for n, index in enumerate(canvas.HELD_OUT_INDICES):
        image = canvas.render_digit_image(rng, index, size_px=int(rng.integers(32, 129)))
        data = evaluation.encode(image, "png" if n % 2 else "jpeg")
        if name == "digit_classifier_bytes":
            out = signature(image_bytes=tf.constant([data]))
        else:
            pixels = Image.open(io.BytesIO(data)).convert("RGB").resize((32, 32), Image.BILINEAR)
            out = signature(images=tf.constant(np.asarray(pixels, np.float32)[None]))
        correct += int(out["classes"][0]) == targets[index] + 1
    assert correct / len(canvas.HELD_OUT_INDICES) >= MIN_ACCURACY


def test_a_second_build_is_a_cache_hit(demo_models_dir: Path) -> None:
    started = time.monotonic()
    command = [sys.executable, "-m", "adapter.modelserver.demo_models.build"]
    result = subprocess.run(
        [*command, "--out", str(demo_models_dir)], capture_output=True, text=True, check=True
    )
    assert "up to date" in result.stdout
    assert time.monotonic() - started < 30


def test_the_stamp_tracks_sources_and_seed(demo_models_dir: Path) -> None:
    assert build.is_current(demo_models_dir, build.source_hash(0))
    assert not build.is_current(demo_models_dir, build.source_hash(1))
