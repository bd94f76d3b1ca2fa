"""Classification outputs -> the top-k labels with their probabilities.

The model's output becomes probabilities by the registry's ``activation``:
``none`` (it holds them already), ``softmax`` (logits of one label among
many) or ``sigmoid`` (independent logits: multi-label, every class at or
above ``min_score`` is an answer). Probabilities returned are always in
``[0, 1]``; :func:`probability_hint` says when an output with ``none``
clearly is not probabilities, so the registry can be fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from adapter.mapping.labels import LabelMap

DEFAULT_TOP_K = 5
DEFAULT_MULTI_LABEL_MIN_SCORE = 0.5
"""``min_score`` of a multi-label (``sigmoid``) model when the request gives none."""
SUM_TOLERANCE = 1e-3
"""How far a row of probabilities may sum from 1 before it is flagged."""


@dataclass(frozen=True)
class Classification:
    """One candidate class: label, class id and probability."""

    label: str
    class_id: int
    probability: float


def activate(output: npt.NDArray[Any], activation: str) -> npt.NDArray[np.float64]:
    """One image's output as probabilities in ``[0, 1]`` (float64)."""
    scores = np.asarray(output, dtype=np.float64).reshape(-1)
    if scores.size == 0:
        return scores
    if activation == "softmax":
        shifted = np.exp(scores - scores.max())
        softmax: npt.NDArray[np.float64] = shifted / shifted.sum()
        return softmax
    if activation == "sigmoid":
        # exp of a non-positive number only: no overflow either way.
        positive = scores >= 0
        exp = np.exp(-np.abs(scores))
        probabilities: npt.NDArray[np.float64] = np.where(positive, 1 / (1 + exp), exp / (1 + exp))
        return probabilities
    return np.clip(scores, 0.0, 1.0)


def probability_hint(output: npt.NDArray[Any]) -> str | None:
    """Why an output read as probabilities (``activation: none``) is not, or None."""
    scores = np.asarray(output, dtype=np.float64).reshape(-1)
    if scores.size == 0:
        return None
    low, high, total = float(scores.min()), float(scores.max()), float(scores.sum())
    if low < 0 or high > 1:
        return (
            f"activation: the output holds values from {low:.4g} to {high:.4g}, not "
            "probabilities: set activation: softmax (one label) or sigmoid (multi-label)"
        )
    if abs(total - 1) > SUM_TOLERANCE:
        return (
            f"activation: the output's probabilities sum to {total:.4g}, not 1: "
            "if it is multi-label, set activation: sigmoid on its logits"
        )
    return None


def map_classification(
    probabilities: npt.NDArray[Any],
    *,
    labels: LabelMap,
    top_k: int | None = DEFAULT_TOP_K,
    background_class: int | None = None,
    only: frozenset[str] | None = None,
    min_score: float = 0.0,
) -> list[Classification]:
    """Return the ``top_k`` (default 5; None: every one) most probable classes, highest first.

    A ``background_class`` (class 0 in ResNet-style signatures) is never
    reported: it means "none of the labels", not a label. ``only`` keeps the
    classes with those label names (default: every class); ``min_score``
    drops classes less probable than it.
    """
    scores = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    if background_class is not None:
        order = order[order != background_class]
    if min_score > 0:
        order = order[scores[order] >= min_score]
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
