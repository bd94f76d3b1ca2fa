"""Classification outputs -> the top-k labels with their probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from adapter.mapping.labels import LabelMap

DEFAULT_TOP_K = 5


@dataclass(frozen=True)
class Classification:
    """One candidate class: label, class id and probability."""

    label: str
    class_id: int
    probability: float


def map_classification(
    probabilities: npt.NDArray[Any],
    *,
    labels: LabelMap,
    top_k: int = DEFAULT_TOP_K,
    background_class: int | None = None,
    only: frozenset[str] | None = None,
) -> list[Classification]:
    """Return the ``top_k`` (default 5) most probable classes, highest first.

    A ``background_class`` (class 0 in ResNet-style signatures) is never
    reported: it means "none of the labels", not a label. ``only`` keeps the
    classes with those label names (default: every class).
    """
    scores = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    if background_class is not None:
        order = order[order != background_class]
    if only is not None:
        keep = [labels.name(int(class_id)) in only for class_id in order]
        order = order[np.array(keep, dtype=bool)]
    return [
        Classification(
            label=labels.name(int(class_id)),
            class_id=int(class_id),
            probability=round(float(scores[class_id]), 6),
        )
        for class_id in order[:top_k]
    ]
