"""NMS and YOLO decode in the Rust core, against TensorFlow's and OpenCV's own.

``adapter.postprocess.nms`` must keep exactly the boxes
``tf.image.non_max_suppression`` keeps, in its order, on any input
(property-based, with ties and duplicates), and what ``cv2.dnn.NMSBoxes``
keeps on continuous random boxes (OpenCV computes IoU in double precision,
TF and we in float32: only exact threshold ties could tell them apart).
``YoloHead.decode`` must match a numpy decode followed by TF's NMS per class
and ``cv2.dnn.NMSBoxesBatched``, on YOLO-shaped outputs (8400 anchors x 80
classes, both layouts, with and without objectness).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from adapter.postprocess import YoloHead, nms

Boxes = npt.NDArray[np.float32]


def tf_nms(boxes: Boxes, scores: npt.NDArray[np.float32], iou: float, limit: int) -> list[int]:
    kept = tf.image.non_max_suppression(boxes, scores, max(limit, 1), iou_threshold=iou)
    return [int(i) for i in kept.numpy()][:limit]


def tf_nms_by_class(
    boxes: Boxes, scores: npt.NDArray[np.float32], classes: npt.NDArray[Any], iou: float, limit: int
) -> list[int]:
    """Class-aware NMS from TF's own: each class alone, merged by score (ties: lower index)."""
    kept: list[int] = []
    for label in np.unique(classes):
        members = np.flatnonzero(classes == label)
        kept += [
            int(members[i]) for i in tf_nms(boxes[members], scores[members], iou, len(members))
        ]
    kept.sort(key=lambda i: (-scores[i], i))
    return kept[:limit]


def xywh(boxes: Boxes) -> list[tuple[float, float, float, float]]:
    return [(float(x0), float(y0), float(x1 - x0), float(y1 - y0)) for x0, y0, x1, y1 in boxes]


# Coordinates on a coarse grid, so that duplicates, shared edges and score ties are common.
corner = st.integers(0, 64).map(lambda v: v * 2.5)
size = st.integers(1, 40).map(lambda v: v * 2.5)
box_lists = st.lists(st.tuples(corner, corner, size, size), min_size=0, max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    box_lists,
    st.data(),
    st.sampled_from([0.0, 0.3, 0.45, 0.5, 0.7, 1.0]),
    st.integers(1, 80),
)
def test_nms_keeps_what_tensorflow_keeps(
    items: list[tuple[float, ...]], data: st.DataObject, iou: float, limit: int
) -> None:
    boxes = np.array([(x, y, x + w, y + h) for x, y, w, h in items], np.float32).reshape(-1, 4)
    scores = data.draw(
        hnp.arrays(np.float32, len(items), elements=st.sampled_from([0.1, 0.5, 0.5, 0.9, 0.25]))
    )
    assert list(nms(boxes, scores, iou_threshold=iou, max_results=limit)) == tf_nms(
        boxes, scores, iou, limit
    )


@settings(max_examples=200, deadline=None)
@given(box_lists, st.data(), st.sampled_from([0.3, 0.45, 0.6]))
def test_class_aware_nms_is_tensorflows_per_class(
    items: list[tuple[float, ...]], data: st.DataObject, iou: float
) -> None:
    boxes = np.array([(x, y, x + w, y + h) for x, y, w, h in items], np.float32).reshape(-1, 4)
    scores = data.draw(hnp.arrays(np.float32, len(items), elements=st.floats(0, 1, width=32)))
    classes = data.draw(hnp.arrays(np.int64, len(items), elements=st.integers(0, 3)))
    kept = nms(boxes, scores, classes, iou_threshold=iou, max_results=100)
    assert list(kept) == tf_nms_by_class(boxes, scores, classes, iou, 100)


def random_boxes(rng: np.random.Generator, count: int) -> tuple[Boxes, npt.NDArray[np.float32]]:
    corners = rng.uniform(0, 640, (count, 2)).astype(np.float32)
    sizes = rng.uniform(2, 120, (count, 2)).astype(np.float32)
    return np.concatenate([corners, corners + sizes], 1), rng.random(count).astype(np.float32)


@pytest.mark.parametrize("seed", range(40))
def test_nms_keeps_what_opencv_keeps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    boxes, scores = random_boxes(rng, int(rng.integers(1, 500)))
    iou = float(rng.choice([0.3, 0.45, 0.5, 0.7]))
    ours = nms(boxes, scores, iou_threshold=iou, max_results=len(boxes))
    theirs = cv2.dnn.NMSBoxes(xywh(boxes), scores.tolist(), 0.0, iou)
    assert list(ours) == [int(i) for i in np.asarray(theirs).reshape(-1)]


def test_min_score_leaves_boxes_out_before_suppression() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.2, 0.9, 0.1], np.float32)
    assert list(nms(boxes, scores, iou_threshold=0.5, max_results=10)) == [1, 2]
    assert list(nms(boxes, scores, iou_threshold=0.5, max_results=10, min_score=0.15)) == [1]


def yolo_output(
    rng: np.random.Generator, anchors: int, classes: int, *, objectness: bool
) -> npt.NDArray[np.float32]:
    """[anchors, values] like a trained head: most anchors near 0, clusters of overlapping
    candidates around a few objects with high scores."""
    values = 4 + int(objectness) + classes
    rows = np.zeros((anchors, values), np.float32)
    rows[:, :2] = rng.uniform(0, 640, (anchors, 2))
    rows[:, 2:4] = rng.uniform(8, 200, (anchors, 2))
    rows[:, 4:] = rng.uniform(0, 0.05, (anchors, values - 4))
    for _ in range(30):  # objects, each answered by ~20 neighbouring anchors
        members = rng.choice(anchors, 20, replace=False)
        centre, extent = rng.uniform(50, 590, 2), rng.uniform(20, 160, 2)
        rows[members, :2] = centre + rng.normal(0, 4, (20, 2))
        rows[members, 2:4] = extent * rng.uniform(0.9, 1.1, (20, 2))
        label = 4 + int(objectness) + int(rng.integers(classes))
        rows[members, label] = rng.uniform(0.3, 0.95, 20)
        if objectness:
            rows[members, 4] = rng.uniform(0.6, 1.0, 20)
    return rows


def reference_decode(
    rows: npt.NDArray[np.float32], classes: int, objectness: bool, min_score: float, iou: float
) -> tuple[Boxes, npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """numpy decode (best class per anchor), then TF's NMS class by class."""
    first = 4 + int(objectness)
    class_scores = rows[:, first : first + classes]
    best = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(rows)), best]
    if objectness:
        scores = scores * rows[:, 4]
    half = rows[:, 2:4] / np.float32(2)
    corners = np.concatenate([rows[:, :2] - half, rows[:, :2] + half], 1)
    candidates = np.flatnonzero(scores >= min_score)
    kept = tf_nms_by_class(corners[candidates], scores[candidates], best[candidates], iou, 300)
    chosen = candidates[kept]
    return corners[chosen], scores[chosen], best[chosen]


@pytest.mark.parametrize(
    ("layout", "objectness"),
    [("channels_first", False), ("anchors_first", False), ("anchors_first", True)],
)
@pytest.mark.parametrize("seed", range(3))
def test_a_yolo_head_decodes_as_numpy_and_tensorflow_would(
    layout: str, objectness: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = yolo_output(rng, 8400, 80, objectness=objectness)
    output = rows.T.copy() if layout == "channels_first" else rows
    head = YoloHead(layout=layout, classes=80, objectness=objectness)  # type: ignore[arg-type]
    kept = head.decode(
        output, input_size=(640, 640), min_score=0.25, iou_threshold=0.45, max_results=300
    )
    boxes, scores, classes = reference_decode(rows, 80, objectness, 0.25, 0.45)
    assert len(kept.scores) > 20  # most objects survive, their duplicates do not
    np.testing.assert_array_equal(kept.classes, classes)
    np.testing.assert_array_equal(kept.scores, scores)
    np.testing.assert_array_equal(kept.boxes, boxes)


@pytest.mark.parametrize("seed", range(3))
def test_a_yolo_head_keeps_what_opencv_keeps(seed: int) -> None:
    rng = np.random.default_rng(10 + seed)
    rows = yolo_output(rng, 8400, 80, objectness=False)
    head = YoloHead(layout="channels_first", classes=80)
    kept = head.decode(
        rows.T.copy(), input_size=(640, 640), min_score=0.25, iou_threshold=0.45, max_results=8400
    )
    best = rows[:, 4:].argmax(axis=1)
    scores = rows[np.arange(len(rows)), 4 + best]
    half = rows[:, 2:4] / np.float32(2)
    corners = np.concatenate([rows[:, :2] - half, rows[:, :2] + half], 1)
    chosen = cv2.dnn.NMSBoxesBatched(xywh(corners), scores.tolist(), best.tolist(), 0.25, 0.45)
    chosen = sorted((int(i) for i in np.asarray(chosen).reshape(-1)), key=lambda i: (-scores[i], i))
    np.testing.assert_array_equal(kept.boxes, corners[chosen])


def test_normalized_boxes_are_scaled_to_the_input() -> None:
    head = YoloHead(layout="anchors_first", classes=2, normalized=True)
    output = np.array([[0.5, 0.25, 0.1, 0.2, 0.1, 0.8]], np.float32)
    kept = head.decode(
        output, input_size=(640, 320), min_score=0.5, iou_threshold=0.45, max_results=10
    )
    np.testing.assert_allclose(kept.boxes, [[288, 48, 352, 112]])
    assert list(kept.classes) == [1]


def test_an_output_that_is_not_whole_candidates_is_a_value_error() -> None:
    head = YoloHead(layout="anchors_first", classes=2)
    with pytest.raises(ValueError, match="whole number"):
        head.decode(
            np.zeros(13, np.float32),
            input_size=(640, 640),
            min_score=0.5,
            iou_threshold=0.5,
            max_results=1,
        )
