"""``POST /v1/models/{model}/detect`` and ``/classify``."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema

from adapter import metrics
from adapter.api import context, problems, service
from adapter.api.uploads import Upload, read_timeout_s, read_upload
from adapter.mapping.detection import DetectionOptions
from adapter.pipeline import Call, ClassifyOptions
from adapter.registry import RegistryEntry
from adapter.results import BatchResult, ClassifyResult, DetectResult, Failed, Mapped, Timings
from adapter.schemas.options import CLASSIFY_BODY, CLASSIFY_OPTIONS, DETECT_BODY, DETECT_OPTIONS
from adapter.serving.resilience import Deadline

bp = Blueprint("inference", __name__, url_prefix="/v1/models")

JSON = "application/json"
ANNOTATED = ("image/png", "image/jpeg")
Answer = BatchResult[DetectResult] | BatchResult[ClassifyResult]


def _representation() -> str:
    """JSON unless the ``Accept`` header prefers an annotated image; 406 if it allows neither."""
    if not request.headers.get("Accept"):
        return JSON
    best = request.accept_mimetypes.best_match([JSON, *ANNOTATED])
    if best is None:
        raise problems.NotAcceptable(
            "This endpoint answers application/json, or an annotated image/png or image/jpeg."
        )
    return best


def _read(entry: RegistryEntry, options: Schema, body: Schema) -> tuple[Upload, Call, str]:
    """The request's images and options, its call (deadline from arrival), the answer's type."""
    deadline = Deadline(read_timeout_s(request, entry.deadline_s), clock=context.arrived())
    media_type = _representation()
    upload = read_upload(request, options, body, service().settings.max_batch_images)
    if upload.batch and media_type != JSON:
        raise problems.NotAcceptable("An annotated image is drawn for one image at a time.")
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
    core = service()
    entry = core.entry(model, task)  # 404 before reading a large body
    # The body is read before admission: a slow upload holds a spare thread, not a place.
    upload, call, media_type = _read(entry, options, body)
    with core.admitted(call):
        answer: Answer
        if task == "detection":
            answer = core.detect(model, upload.images, DetectionOptions(**upload.options), call)
        else:
            answer = core.classify(model, upload.images, ClassifyOptions(**upload.options), call)
        _observe(answer)
        if media_type == JSON:
            return _json(upload, answer)
        return _annotated(upload.images[0], answer, media_type)


def _json(upload: Upload, answer: Answer) -> Response:
    if not upload.batch:
        body = _result(answer, answer.single())
    else:
        body = {
            "results": [
                {"error": problems.to_problem(slot.error)}
                if isinstance(slot, Failed)
                else _result(answer, slot)
                for slot in answer.slots
            ]
        }
    response = jsonify(body)
    _server_timing(response, answer)
    return response


def _result(answer: Answer, slot: Mapped[DetectResult] | Mapped[ClassifyResult]) -> dict[str, Any]:
    """One image's JSON: the model that answered, the image, its findings, its timings."""
    findings = dataclasses.asdict(slot.result)
    for detection in findings.get("detections", ()):
        if detection["mask"] is None:  # only asked-for masks are shown
            del detection["mask"]
    return {
        "model": {"name": answer.model, "version": answer.version},
        **findings,
        "timings_ms": _ms(dataclasses.replace(answer.timings, mapping_s=slot.mapping_s)),
    }


def _annotated(data: bytes, answer: Answer, media_type: str) -> Response:
    from adapter import annotate  # Pillow is loaded only by workers that draw

    result, limits = answer.single().result, service().limits
    start = time.perf_counter()
    if isinstance(result, DetectResult):
        drawn = annotate.draw_detections(data, result.detections, media_type, limits)
    else:
        drawn = annotate.draw_classifications(data, result.classifications, media_type, limits)
    response = Response(drawn, mimetype=media_type)
    _server_timing(response, answer)
    response.headers["Server-Timing"] += (
        f", annotate;dur={(time.perf_counter() - start) * 1000:.3f}"
    )
    return response


def _ms(timings: Timings) -> dict[str, float]:
    return {
        "decode": round(timings.decode_s * 1000, 3),
        "inference": round(timings.inference_s * 1000, 3),
        "mapping": round(timings.mapping_s * 1000, 3),
    }


def _observe(answer: Answer) -> None:
    """Record the request's step times in the metrics' histograms (if any image got a result)."""
    if any(isinstance(slot, Mapped) for slot in answer.slots):
        metrics.observe_steps(answer.model, answer.timings)


def _server_timing(response: Response, answer: Answer) -> None:
    """``Server-Timing``: the request's decode, inference and mapping, in ms (and the drawing
    of an annotated image, added by :func:`_annotated`); none if no image got a result."""
    response.vary.add("Accept")  # JSON or an annotated image, at one URL
    if not any(isinstance(slot, Mapped) for slot in answer.slots):
        return
    ms = _ms(answer.timings)
    response.headers["Server-Timing"] = (
        f"decode;dur={ms['decode']:.3f}, inference;dur={ms['inference']:.3f}, "
        f"mapping;dur={ms['mapping']:.3f}"
    )
