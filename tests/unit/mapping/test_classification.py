"""Classification mapping: probabilities -> top-k labels, background left out."""

from __future__ import annotations

import numpy as np
import pytest

from adapter.mapping.classification import map_classification
from adapter.mapping.labels import LabelMap

LABELS = LabelMap.of(["background", "cat", "dog", "bird"])


def test_top_k_sorted_with_labels() -> None:
    result = map_classification(np.array([0.1, 0.2, 0.6, 0.1]), labels=LABELS, top_k=2)
    assert [(c.label, c.class_id) for c in result] == [("dog", 2), ("cat", 1)]
    assert result[0].probability == pytest.approx(0.6)


def test_background_is_never_reported() -> None:
    probabilities = np.array([0.7, 0.1, 0.15, 0.05])
    result = map_classification(probabilities, labels=LABELS, top_k=4, background_class=0)
    assert [c.label for c in result] == ["dog", "cat", "bird"]


def test_label_file_shorter_than_the_output() -> None:
    result = map_classification(np.array([0.0, 0.0, 0.0, 0.0, 1.0]), labels=LABELS, top_k=1)
    assert result[0].label == "4"
