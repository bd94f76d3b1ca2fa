"""``POST /v1/models/{model}/detect`` and ``/classify``."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema

from adapter import errors, metrics
from adapter.api.uploads import Upload, read_timeout_s, read_upload
from adapter.mapping.detection import DetectionOptions
from adapter.pipeline import Call, ClassifyOptions, ClassifyResult, DetectResult, Pipeline, Timings
from adapter.registry import RegistryEntry
from adapter.schemas.options import CLASSIFY_BODY, CLASSIFY_OPTIONS, DETECT_BODY, DETECT_OPTIONS
from adapter.serving.resilience import Deadline

bp = Blueprint("inference", __name__, url_prefix="/v1/models")

JSON = "application/json"
ANNOTATED = ("image/png", "image/jpeg")
Result = DetectResult | ClassifyResult


def _pipeline() -> Pipeline:
    pipeline: Pipeline = current_app.extensions["pipeline"]
    return pipeline


def _representation() -> str:
    """JSON unless the ``Accept`` header prefers an annotated image; 406 if it allows neither."""
    if not request.headers.get("Accept"):
        return JSON
    best = request.accept_mimetypes.best_match([JSON, *ANNOTATED])
    if best is None:
        raise errors.NotAcceptable(
            "This endpoint answers application/json, or an annotated image/png or image/jpeg."
        )
    return best


def _read(config: RegistryEntry, options: Schema, body: Schema) -> tuple[Upload, Call, str]:
    """The request's images and options, its call (deadline from now) and the answer's type."""
    deadline = Deadline(read_timeout_s(request, config.deadline_s))
    media_type = _representation()
    upload = read_upload(request, options, body, _pipeline().settings.max_batch_images)
    if upload.batch and media_type != JSON:
        raise errors.NotAcceptable("An annotated image is drawn for one image at a time.")
    return upload, Call(deadline=deadline, version=upload.options.pop("version")), media_type


@bp.post("/<model>/detect")
def detect(model: str) -> ResponseReturnValue:
    """Detect objects: labels, scores and boxes in the original image's pixels."""
    return _answer(model, "detection", DETECT_OPTIONS, DETECT_BODY)


@bp.post("/<model>/classify")
def classify(model: str) -> ResponseReturnValue:
    """Classify an image: the top-k labels with their probabilities."""
    return _answer(model, "classification", CLASSIFY_OPTIONS, CLASSIFY_BODY)


def _answer(model: str, task: str, options: Schema, body: Schema) -> Response:
    """Run the request's images through ``model`` and answer JSON or an annotated image."""
    pipeline = _pipeline()
    config = pipeline.model(model, task)  # 404 before reading a large body
    upload, call, media_type = _read(config, options, body)
    results: Sequence[Result | errors.ApiError]
    if task == "detection":
        results = pipeline.detect(model, upload.images, DetectionOptions(**upload.options), call)
    else:
        results = pipeline.classify(model, upload.images, ClassifyOptions(**upload.options), call)
    _observe(model, results)
    if media_type == JSON:
        return _json(upload, results)
    from adapter import annotate  # Pillow is loaded only by workers that draw

    result, data = _single(results), upload.images[0]
    start = time.perf_counter()
    if isinstance(result, DetectResult):
        drawn = annotate.draw_detections(data, result.detections, media_type, pipeline.limits)
    else:
        drawn = annotate.draw_classifications(
            data, result.classifications, media_type, pipeline.limits
        )
    return _image(drawn, media_type, results, time.perf_counter() - start)


def _single(results: Sequence[Result | errors.ApiError]) -> Result:
    """The one result of a single-image request; its error is the request's error."""
    (result,) = results
    if isinstance(result, errors.ApiError):
        raise result
    return result


def _json(upload: Upload, results: Sequence[Result | errors.ApiError]) -> Response:
    if not upload.batch:
        body: dict[str, Any] = dataclasses.asdict(_single(results))
    else:
        body = {"results": [_item(result) for result in results]}
    response = jsonify(body)
    _server_timing(response, results)
    return response


def _item(result: Result | errors.ApiError) -> dict[str, Any]:
    if isinstance(result, errors.ApiError):
        return {"error": result.to_problem()}
    return dataclasses.asdict(result)


def _image(
    data: bytes, media_type: str, results: Sequence[Result | errors.ApiError], draw_s: float
) -> Response:
    response = Response(data, mimetype=media_type)
    _server_timing(response, results)
    response.headers["Server-Timing"] += f", annotate;dur={draw_s * 1000:.3f}"
    return response


def _timings(results: Sequence[Result | errors.ApiError]) -> Timings | None:
    """The request's ms: the batch's decode and inference, and all the mapping (None if no
    image got a result)."""
    done = [result for result in results if not isinstance(result, errors.ApiError)]
    if not done:
        return None
    mapping = sum(result.timings_ms.mapping for result in done)
    return dataclasses.replace(done[0].timings_ms, mapping=mapping)


def _observe(model: str, results: Sequence[Result | errors.ApiError]) -> None:
    """Record the request's step times in the metrics' histograms."""
    timings = _timings(results)
    if timings is not None:
        metrics.observe_steps(model, timings.decode, timings.inference, timings.mapping)


def _server_timing(response: Response, results: Sequence[Result | errors.ApiError]) -> None:
    """``Server-Timing``: the batch's decode and inference, and all the mapping, in ms
    (and the drawing of an annotated image, added by :func:`_image`)."""
    response.vary.add("Accept")  # JSON or an annotated image, at one URL
    timings = _timings(results)
    if timings is None:
        return
    response.headers["Server-Timing"] = (
        f"decode;dur={timings.decode:.3f}, inference;dur={timings.inference:.3f}, "
        f"mapping;dur={timings.mapping:.3f}"
    )
