"""Detection mapping: normalized model boxes -> labelled boxes in original pixels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from adapter.mapping.detection import DetectionOptions, Frame, map_detections
from adapter.mapping.labels import LabelMap

LABELS = LabelMap.of(["background", "cat", "dog"])


@dataclass(frozen=True)
class Letterbox:
    """1000x500 letterboxed into 100x100: scale 0.1, 25 px of padding top and bottom."""

    scale: float = 0.1
    pad_y: float = 25.0

    def to_original(self, x: float, y: float) -> tuple[float, float]:
        return x / self.scale, (y - self.pad_y) / self.scale


FRAME = Frame(image_width=1000, image_height=500, input_width=100, input_height=100,
              transform=Letterbox())  # fmt: skip


def _run(boxes, classes, scores, count=None, **options):  # type: ignore[no-untyped-def]
    return map_detections(
        np.array(boxes, dtype=np.float32), np.array(classes, dtype=np.float32),
        np.array(scores, dtype=np.float32), count,
        frame=FRAME, labels=LABELS, options=DetectionOptions(**options),
    )  # fmt: skip


def test_box_is_mapped_back_through_the_letterbox() -> None:
    # Model space: x 10..50, y 35..55 (of 100) -> original x 100..500, y 100..300.
    [det] = _run([[0.35, 0.10, 0.55, 0.50]], [2], [0.9])
    assert det.label == "dog" and det.class_id == 2
    assert (det.box.x_min, det.box.y_min, det.box.x_max, det.box.y_max) == pytest.approx(
        (100, 100, 500, 300), abs=0.01
    )
    assert det.box_normalized.x_max == pytest.approx(0.5)
    assert det.box_normalized.y_max == pytest.approx(0.6)


def test_boxes_are_clipped_to_the_image_and_padding_only_boxes_dropped() -> None:
    found = _run([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.2, 1.0]], [1, 1], [0.9, 0.8])
    assert len(found) == 1  # the second box lies in the top padding only
    assert found[0].box.y_min == 0 and found[0].box.x_min == 0


def test_sorted_filtered_limited_and_count_respected() -> None:
    boxes = [[0.3, 0.1, 0.4, 0.2]] * 4
    found = _run(boxes, [1, 2, 1, 2], [0.6, 0.95, 0.4, 0.7], count=4)
    assert [d.score for d in found] == pytest.approx([0.95, 0.7, 0.6])
    assert len(_run(boxes, [1, 2, 1, 2], [0.6, 0.95, 0.4, 0.7], max_results=2)) == 2
    assert len(_run(boxes, [1, 2, 1, 2], [0.6, 0.95, 0.4, 0.7], count=1)) == 1
    assert len(_run(boxes, [1, 2, 1, 2], [0.6, 0.95, 0.4, 0.7], min_score=0.0)) == 4


def test_unknown_class_ids_are_reported_by_number() -> None:
    [det] = _run([[0.3, 0.1, 0.4, 0.2]], [7], [0.9])
    assert det.label == "7" and det.class_id == 7
