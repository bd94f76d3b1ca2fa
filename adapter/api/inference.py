"""``POST /v1/models/{model}/detect`` and ``/classify``."""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from adapter.api.uploads import read_image, read_options, read_timeout_s
from adapter.config import ModelConfig
from adapter.mapping.detection import DetectionOptions
from adapter.pipeline import Call, Pipeline
from adapter.schemas.options import CLASSIFY_OPTIONS, DETECT_OPTIONS
from adapter.serving.resilience import Deadline

bp = Blueprint("inference", __name__, url_prefix="/v1/models")


def _pipeline() -> Pipeline:
    pipeline: Pipeline = current_app.extensions["pipeline"]
    return pipeline


def _call(config: ModelConfig, options: dict[str, Any]) -> Call:
    """The request's deadline starts now, before the upload is read and decoded."""
    deadline = Deadline(read_timeout_s(request, config.deadline_s))
    return Call(deadline=deadline, version=options.pop("version"))


@bp.post("/<model>/detect")
def detect(model: str) -> ResponseReturnValue:
    """Detect objects: labels, scores and boxes in the original image's pixels."""
    pipeline = _pipeline()
    config = pipeline.model(model, "detection")  # 404 before reading a large body
    options = read_options(request, DETECT_OPTIONS)
    call = _call(config, options)
    result = pipeline.detect(model, read_image(request), DetectionOptions(**options), call)
    return jsonify(dataclasses.asdict(result))


@bp.post("/<model>/classify")
def classify(model: str) -> ResponseReturnValue:
    """Classify an image: the top-k labels with their probabilities."""
    pipeline = _pipeline()
    config = pipeline.model(model, "classification")
    options = read_options(request, CLASSIFY_OPTIONS)
    call = _call(config, options)
    result = pipeline.classify(model, read_image(request), options["top_k"], call)
    return jsonify(dataclasses.asdict(result))
