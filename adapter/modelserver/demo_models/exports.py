"""Demo models shaped like the exports users bring, built from the two trained networks.

No training here: the detector's patch network and the digit classifier
(trained on samples 0-1499 by :mod:`detector` and :mod:`classifier`) are
wrapped in the signatures real exporters write:

- ``digit_detector_zoo``: as TF2 Detection Zoo's ``exporter_main_v2``:
  ``input_tensor`` uint8 ``[1, -1, -1, 3]``, the image resized inside the graph
  (keep aspect, longest side 320, like ``keep_aspect_ratio_resizer``), float
  1-based classes, and the heavy outputs (``raw_detection_*``,
  ``detection_multiclass_scores``, ``detection_features``) a client never needs.
- ``digit_detector_masks``: the same plus Mask R-CNN's ``detection_masks``
  ``[1, 100, 28, 28]``, box-relative ink masks.
- ``digit_yolo``: as an ultralytics YOLOv8 SavedModel: ``images`` float32
  ``[1, 640, 640, 3]`` in 0..1 (letterboxed with grey 114), one output
  ``[1, 4 + 10, 8400]`` of cx, cy, w, h in input pixels and per-class scores,
  several overlapping candidates per digit and a low-score one per other anchor.
- ``digit_classifier_keras``: as Keras 3 ``model.export()``: input
  ``keras_tensor``, one output ``output_0`` of 10 raw logits (digits 0-9).
- ``digit_attributes``: a multi-label head on the same network: 13 logits
  whose sigmoids are the digit's probability and those of "even", "odd" and
  "prime".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from adapter.modelserver.demo_models import classifier, detector, ink

MODELS = (
    "digit_detector_zoo",
    "digit_detector_masks",
    "digit_yolo",
    "digit_classifier_keras",
    "digit_attributes",
)
ZOO_SIDE = 320  # the internal resize: longest side, the scale the patch network knows
RAW_ANCHORS = 1917  # rows of raw_detection_*, as an SSD MobileNet 300x300 has anchors
MASK_SIDE = 28  # Mask R-CNN's mask head resolution
YOLO_SIDE = 640
YOLO_STRIDES = (8, 16, 32)  # 80x80 + 40x40 + 20x20 = 8400 anchors
LETTERBOX_GREY = 114.0  # what ultralytics pads with, and the adapter for format yolo
# Copies of each digit's box the raw head answers, as YOLO's neighbouring
# anchors do: (centre shift x, y as a share of the size, size change, score factor).
YOLO_COPIES = (
    (0.0, 0.0, 0.0, 1.0),
    (0.05, -0.03, 0.06, 0.92),
    (-0.04, 0.05, -0.05, 0.88),
    (0.03, 0.04, 0.1, 0.8),
    (-0.06, -0.02, 0.04, 0.75),
)
BACKGROUND_SCORE = 1e-3  # every other anchor's class scores
ATTRIBUTES = {"even": (0, 2, 4, 6, 8), "odd": (1, 3, 5, 7, 9), "prime": (2, 3, 5, 7)}


def fit_inside(images: tf.Tensor, side: int) -> tf.Tensor:
    """uint8 [N,H,W,3] resized (antialiased bilinear) so the longest side is ``side``."""
    height = tf.cast(tf.shape(images)[1], tf.float32)
    width = tf.cast(tf.shape(images)[2], tf.float32)
    scale = side / tf.maximum(height, width)
    size = tf.cast(tf.maximum(tf.round(tf.stack([height, width]) * scale), 1.0), tf.int32)
    resized = tf.image.resize(images, size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def _rows(values: tf.Tensor, rows: int) -> tf.Tensor:
    """[K, ...] cut or zero-padded to [1, rows, ...]."""
    kept = values[:rows]
    tail = values.shape[1:].as_list()
    padding = [[0, rows - tf.shape(kept)[0]]] + [[0, 0]] * len(tail)
    return tf.ensure_shape(tf.pad(kept, padding), [rows, *tail])[None]


def _ink_masks(found: detector.Found, view: tf.Tensor) -> tf.Tensor:
    """[K,28,28] ink probability over each detection's box (box-relative, as Mask R-CNN)."""
    height = tf.cast(tf.shape(view)[1], tf.float32)
    width = tf.cast(tf.shape(view)[2], tf.float32)
    regions = found.boxes * tf.stack([height, width, height, width])
    coverage = ink.patches(found.coverage, found.image, regions)[..., 0]
    # Coverage at the ink threshold reads 0.5: the mask means "this pixel is ink".
    return tf.clip_by_value(coverage / (2.0 * ink.INK_THRESHOLD), 0.0, 1.0)


def zoo_detect(model: keras.Model, images: tf.Tensor, *, masks: bool) -> dict[str, tf.Tensor]:
    """uint8 [1,H,W,3] -> every output a Detection Zoo export answers (``masks``: Mask R-CNN's)."""
    view = fit_inside(images, ZOO_SIDE)
    found = detector.find(model, view)
    values = {
        "detection_boxes": found.boxes,
        "detection_classes": found.classes,
        "detection_scores": found.scores,
        "detection_multiclass_scores": found.probabilities,
        "detection_anchor_indices": tf.cast(tf.range(tf.size(found.image)), tf.float32),
        "detection_features": tf.reshape(found.patches, [-1, ink.PATCH_SIDE * ink.PATCH_SIDE]),
    }
    if masks:
        values["detection_masks"] = _ink_masks(found, view)
    outputs = detector.per_image(tf.shape(images)[0], found, values)
    outputs["num_detections"] = tf.ensure_shape(outputs["num_detections"], [1])
    outputs["raw_detection_boxes"] = _rows(found.boxes, RAW_ANCHORS)
    outputs["raw_detection_scores"] = _rows(found.probabilities, RAW_ANCHORS)
    return outputs


def _anchor_grid() -> np.ndarray:
    """[8400, 4] cx, cy, w, h of every anchor cell, in input pixels."""
    cells = []
    for stride in YOLO_STRIDES:
        side = YOLO_SIDE // stride
        ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
        centres = (np.stack([xs.ravel(), ys.ravel()], 1) + 0.5) * stride
        cells.append(np.concatenate([centres, np.full_like(centres, stride)], 1))
    return np.concatenate(cells)


def yolo_predict(model: keras.Model, images: tf.Tensor) -> tf.Tensor:
    """float32 [1,640,640,3] 0..1 -> [1, 14, 8400]: cx, cy, w, h (px) and 10 class scores."""
    pixels = images * 255.0
    # The letterbox's grey bars read as white paper, as the detector knows it.
    grey = tf.reduce_all(tf.abs(pixels - LETTERBOX_GREY) <= 0.5, axis=-1)
    bars = tf.reduce_all(grey, axis=2, keepdims=True) | tf.reduce_all(grey, axis=1, keepdims=True)
    pixels = tf.where(bars[..., None], 255.0, pixels)
    view = tf.image.resize(pixels, [ZOO_SIDE, ZOO_SIDE], method="bilinear", antialias=True)
    found = detector.find(model, tf.cast(tf.clip_by_value(tf.round(view), 0.0, 255.0), tf.uint8))
    y0, x0, y1, x1 = tf.unstack(found.boxes * YOLO_SIDE, axis=1)
    centre = tf.stack([(x0 + x1) / 2, (y0 + y1) / 2], 1)
    size = tf.stack([x1 - x0, y1 - y0], 1)
    scores = found.probabilities[:, 1:]
    copies = [
        tf.concat([centre + size * (dx, dy), size * (1.0 + grow), scores * factor], 1)
        for dx, dy, grow, factor in YOLO_COPIES
    ]
    grid = _anchor_grid()
    background = np.concatenate([grid, np.full((len(grid), 10), BACKGROUND_SCORE, np.float32)], 1)
    rows = tf.concat([*copies, tf.constant(background)], 0)[: len(grid)]
    return tf.ensure_shape(tf.transpose(rows), [14, len(grid)])[None]


def keras_logits(network: keras.Model, images: tf.Tensor) -> tf.Tensor:
    """float32 [N,32,32,3] 0..255 -> [N,10] raw logits of digits 0-9 (no background class)."""
    return network(images, training=False)[:, 1:]


def attribute_logits(network: keras.Model, images: tf.Tensor) -> tf.Tensor:
    """[N,13] logits whose sigmoids are P(digit d) for 0-9, then P(even), P(odd), P(prime)."""
    digits = tf.nn.softmax(network(images, training=False))[:, 1:]
    member = np.zeros((10, len(ATTRIBUTES)), np.float32)
    for column, members in enumerate(ATTRIBUTES.values()):
        member[list(members), column] = 1.0
    probabilities = tf.clip_by_value(tf.concat([digits, digits @ member], 1), 1e-6, 1 - 1e-6)
    return tf.math.log(probabilities) - tf.math.log1p(-probabilities)


def _write(
    path: Path, tracked: keras.Model, fn: Callable[[tf.Tensor], object], spec: tf.TensorSpec
) -> None:
    archive = keras.export.ExportArchive()
    archive.track(tracked)
    archive.add_endpoint("serving_default", fn, input_signature=[spec])
    archive.write_out(str(path), verbose=False)


def export_all(patch_network: keras.Model, digit_network: keras.Model, out: Path) -> None:
    """Write every model of :data:`MODELS` as ``out/<model>/1``."""
    zoo_input = tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")
    side = classifier.INPUT_SIDE
    keras_input = tf.TensorSpec([None, side, side, 3], tf.float32, name="keras_tensor")
    for name, masks in (("digit_detector_zoo", False), ("digit_detector_masks", True)):
        _write(
            out / name / "1",
            patch_network,
            lambda input_tensor, masks=masks: zoo_detect(patch_network, input_tensor, masks=masks),
            zoo_input,
        )
    _write(
        out / "digit_yolo" / "1",
        patch_network,
        lambda images: yolo_predict(patch_network, images),
        tf.TensorSpec([1, YOLO_SIDE, YOLO_SIDE, 3], tf.float32, name="images"),
    )
    _write(
        out / "digit_classifier_keras" / "1",
        digit_network,
        lambda keras_tensor: keras_logits(digit_network, keras_tensor),
        keras_input,
    )
    _write(
        out / "digit_attributes" / "1",
        digit_network,
        lambda keras_tensor: attribute_logits(digit_network, keras_tensor),
        keras_input,
    )
