"""``POST /v1/models/{model}/detect`` and ``/classify``."""

from __future__ import annotations

import dataclasses

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from adapter.api.uploads import read_image, read_options
from adapter.mapping.detection import DetectionOptions
from adapter.pipeline import Pipeline
from adapter.schemas.options import CLASSIFY_OPTIONS, DETECT_OPTIONS

bp = Blueprint("inference", __name__, url_prefix="/v1/models")


def _pipeline() -> Pipeline:
    pipeline: Pipeline = current_app.extensions["pipeline"]
    return pipeline


@bp.post("/<model>/detect")
def detect(model: str) -> ResponseReturnValue:
    """Detect objects: labels, scores and boxes in the original image's pixels."""
    pipeline = _pipeline()
    pipeline.model(model, "detection")  # 404 before reading a large body
    options = read_options(request, DETECT_OPTIONS)
    result = pipeline.detect(model, read_image(request), DetectionOptions(**options))
    return jsonify(dataclasses.asdict(result))


@bp.post("/<model>/classify")
def classify(model: str) -> ResponseReturnValue:
    """Classify an image: the top-k labels with their probabilities."""
    pipeline = _pipeline()
    pipeline.model(model, "classification")
    options = read_options(request, CLASSIFY_OPTIONS)
    result = pipeline.classify(model, read_image(request), options["top_k"])
    return jsonify(dataclasses.asdict(result))
