"""Images -> input tensors -> Predict -> a result per image; no HTTP in here.

The pipeline owns the order of work and the time spent in each step; the
steps themselves live in :mod:`adapter.imaging`, :mod:`adapter.serving`,
:mod:`adapter.postprocess` and :mod:`adapter.mapping`. It takes a
:class:`~adapter.resolution.ResolvedModel`, so every field it reads is known,
and answers a :class:`~adapter.results.BatchResult`: one slot per image (its
result, or why it has none) and the request's timings.

A batch is one Predict, unless the model takes one image per call (its
signature fixes a batch of 1, or each image goes at its own size, ``resize:
fit``): then each image is its own Predict, sent concurrently (at most
``ADAPTER_PREDICT_CONCURRENCY`` per worker) within the request's deadline,
the answers kept in request order.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from adapter import imaging, tracing
from adapter.catalog import Catalog
from adapter.exceptions import BackendError, BackendRejected, InvalidOption, ModelRejectedImage
from adapter.mapping.classification import (
    DEFAULT_MULTI_LABEL_MIN_SCORE,
    DEFAULT_TOP_K,
    activate,
    map_classification,
    probability_hint,
)
from adapter.mapping.detection import DetectionOptions, Frame, map_detections, map_yolo
from adapter.registry import RegistryEntry
from adapter.resolution import BytesInput, ResolvedModel
from adapter.results import (
    BatchResult,
    ClassifyResult,
    DetectResult,
    Failed,
    ImageFailure,
    ImageSize,
    Mapped,
    R,
    Timings,
)
from adapter.serving.resilience import Deadline
from adapter.serving.servable import ModelRef

log = logging.getLogger(__name__)

Outputs = Mapping[str, npt.NDArray[Any]]
"""One image's outputs by name, each with one row."""

_REJECTED = "The model could not decode this image."


@dataclass(frozen=True)
class ClassifyOptions:
    """What to return: the ``top_k`` best classes (default: 5, or every class for
    multi-label models), of the ``labels`` named, at least ``min_score`` probable
    (default: 0.5 for multi-label models, else 0)."""

    top_k: int | None = None
    labels: frozenset[str] | None = None
    min_score: float | None = None


@dataclass(frozen=True)
class Call:
    """How one request calls its model: the deadline, and a version the request picked."""

    deadline: Deadline
    version: str | None = None


@dataclass(frozen=True)
class _Identity:
    """The transform of a model that decoded the original bytes itself."""

    def to_original(self, x: float, y: float) -> tuple[float, float]:
        return x, y


@dataclass(frozen=True)
class _Decoded:
    """An image ready for the model: its geometry, and where its row is: the
    ``row`` of the ``call``-th Predict."""

    frame: Frame
    call: int
    row: int


@dataclass(frozen=True)
class _Inputs:
    """One tensor per Predict (a row per decoded image; none if no image decoded),
    and each image's state."""

    tensors: list[npt.NDArray[Any]]
    images: list[_Decoded | ImageFailure]


def check_labels(entry: RegistryEntry, wanted: frozenset[str] | None) -> None:
    """:class:`InvalidOption` naming ``labels`` if the filter names a label the model lacks."""
    if wanted is None:
        return
    known = set(entry.label_names)
    unknown = sorted(wanted - known) if known else []
    if unknown:
        names = ", ".join(repr(label) for label in unknown)
        raise InvalidOption(
            f"Model {entry.name!r} has no label {names}; see GET /v1/models/{entry.name}.",
            field="labels",
            reason=f"Unknown label(s): {names}.",
        )


def servable(entry: RegistryEntry, version: str | None) -> ModelRef:
    """The registry's servable, or the version/label the request picked if the entry allows."""
    if version is None:
        return entry.serving
    if version.isdigit() and int(version) in entry.allow_versions:
        return dataclasses.replace(entry.serving, version=int(version), version_label=None)
    if version in entry.allow_labels:
        return dataclasses.replace(entry.serving, version=None, version_label=version)
    allowed = [str(v) for v in entry.allow_versions] + list(entry.allow_labels)
    hint = f"it allows {', '.join(allowed)}" if allowed else "it serves one version only"
    reason = (
        f"Must be one of: {', '.join(allowed)}."
        if allowed
        else "This model does not allow choosing a version."
    )
    raise InvalidOption(
        f"Model {entry.name!r} cannot be asked for version {version!r}: {hint}.",
        field="version",
        reason=reason,
    )


class Pipeline:
    """Runs batches of images through resolved models, on the catalog's backends.

    ``concurrency`` bounds the per-image Predicts in flight in this worker.
    """

    def __init__(self, catalog: Catalog, concurrency: int = 8) -> None:
        self.catalog = catalog
        self.concurrency = concurrency
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def detect(
        self,
        model: ResolvedModel,
        ref: ModelRef,
        images: Sequence[bytes],
        options: DetectionOptions,
        call: Call,
    ) -> BatchResult[DetectResult]:
        """Detect objects in each encoded image."""
        roles = set(model.outputs) - ({"masks"} if not options.masks else set())
        head = model.head

        def detections(frame: Frame, outputs: Outputs) -> DetectResult:
            if head is not None:
                kept = head.decode(
                    _output(model, outputs, "predictions")[0],
                    input_size=(frame.input_width, frame.input_height),
                    min_score=options.min_score,
                    iou_threshold=model.entry.nms_iou,
                    max_results=options.max_results,
                )
                found = map_yolo(kept, frame=frame, labels=model.labels, options=options)
            else:
                masks = _output(model, outputs, "masks")[0] if "masks" in roles else None
                found = map_detections(
                    *_detection_outputs(model, outputs),
                    frame=frame,
                    labels=model.labels,
                    options=options,
                    masks=masks,
                )
            return DetectResult(_image_size(frame), found)

        return self._run(model, ref, images, call, detections, roles)

    def classify(
        self,
        model: ResolvedModel,
        ref: ModelRef,
        images: Sequence[bytes],
        options: ClassifyOptions,
        call: Call,
    ) -> BatchResult[ClassifyResult]:
        """Classify each encoded image."""
        activation = model.entry.activation
        multi_label = activation == "sigmoid"
        min_score = options.min_score
        if min_score is None:
            min_score = DEFAULT_MULTI_LABEL_MIN_SCORE if multi_label else 0.0
        top_k = options.top_k
        if top_k is None and not multi_label:
            top_k = DEFAULT_TOP_K

        def classes(frame: Frame, outputs: Outputs) -> ClassifyResult:
            raw = _output(model, outputs, "probabilities")[0]
            if activation == "none":
                hint = probability_hint(raw)
                if hint is not None:
                    self.catalog.hint(model.name, hint)
            found = map_classification(
                activate(raw, activation),
                labels=model.labels,
                top_k=top_k,
                background_class=model.entry.background_class,
                only=options.labels,
                min_score=min_score,
            )
            return ClassifyResult(_image_size(frame), found)

        return self._run(model, ref, images, call, classes, set(model.outputs))

    def _run(
        self,
        model: ResolvedModel,
        ref: ModelRef,
        images: Sequence[bytes],
        call: Call,
        mapping: Callable[[Frame, Outputs], R],
        roles: set[str],
    ) -> BatchResult[R]:
        """Decode, predict, map each image: the batch's slots and the request's timings.

        An image that fails to decode (or that a bytes model rejects) gets a
        :class:`~adapter.results.Failed` slot; a backend failure raises, as it
        fails them all. Only the outputs of ``roles`` are asked for.
        """
        start = time.perf_counter()
        with tracing.span("decode", {"images": len(images)}):
            inputs = self._inputs(model, images)
        decoded = time.perf_counter()
        output_filter = sorted({model.outputs[role] for role in roles})
        with tracing.span("predict", {"model": model.name, "calls": len(inputs.tensors)}):
            version, answers = self._predict(model, ref, inputs.tensors, call, output_filter)
        predicted = time.perf_counter()
        with tracing.span("mapping"):
            slots = [_slot(image, answers, mapping) for image in inputs.images]
        timings = Timings(
            decode_s=decoded - start,
            inference_s=predicted - decoded,
            mapping_s=sum(slot.mapping_s for slot in slots if isinstance(slot, Mapped)),
        )
        return BatchResult(model.name, version, tuple(slots), timings)

    def _inputs(self, model: ResolvedModel, images: Sequence[bytes]) -> _Inputs:
        """The decoded images as one tensor per Predict, and each image's frame or failure."""
        if isinstance(model.input, BytesInput):
            frames = [self._probe(data) for data in images]
            originals = [data for data, frame in zip(images, frames, strict=True)
                         if isinstance(frame, Frame)]  # fmt: skip
            if model.per_image:
                tensors = [np.array([data], dtype=object) for data in originals]
            else:
                tensors = [np.array(originals, dtype=object)] if originals else []
        elif model.input.preprocessing.fixed_size:
            batch = model.input.preprocessor.run_batch(images)
            width, height = model.input.preprocessing.size
            frames = [
                item if isinstance(item, imaging.ImageError)
                else Frame(item.width, item.height, width, height, item.transform)
                for item in batch.items
            ]  # fmt: skip
            good = [i for i, frame in enumerate(frames) if isinstance(frame, Frame)]
            if model.per_image:
                tensors = [batch.array[i : i + 1] for i in good]
            elif good:
                # A failed image's slot holds padding: send only the rows that decoded.
                tensors = [batch.array if len(good) == len(frames) else batch.array[good]]
            else:
                tensors = []
        else:  # each image at its own size
            layout = model.input.preprocessing.layout
            each = model.input.preprocessor.run_each(images)
            frames = [
                item if isinstance(item, imaging.ImageError) else _own_frame(item, layout)
                for item in each
            ]
            tensors = [
                item.array[None] for item in each if not isinstance(item, imaging.ImageError)
            ]
        return _Inputs(tensors, _placed(frames, one_per_call=model.per_image))

    def _probe(self, data: bytes) -> Frame | ImageFailure:
        """A bytes model's image frame, from a header check; the model decodes the rest."""
        try:
            info = imaging.probe(data, limits=self.catalog.limits)
        except imaging.ImageError as exc:
            return exc
        return Frame(info.width, info.height, info.width, info.height, _Identity())

    def _predict(
        self,
        model: ResolvedModel,
        ref: ModelRef,
        tensors: list[npt.NDArray[Any]],
        call: Call,
        output_filter: list[str],
    ) -> tuple[int | None, list[list[Outputs | ImageFailure]]]:
        """The version that answered, and per Predict each row's outputs (or why it has none).

        Several Predicts run concurrently; the first backend failure is raised
        once all have ended (each has the request's deadline).
        """
        if len(tensors) <= 1:
            answers = [self._predict_call(model, ref, t, call, output_filter) for t in tensors]
        else:
            executor = self._pool()
            futures = [
                executor.submit(
                    contextvars.copy_context().run,
                    self._predict_call, model, ref, tensor, call, output_filter,
                )
                for tensor in tensors
            ]  # fmt: skip
            answers = [future.result() for future in futures]
        versions = [version for version, _ in answers if version is not None]
        return (versions[0] if versions else None), [rows for _, rows in answers]

    def _pool(self) -> ThreadPoolExecutor:
        """The worker's executor for concurrent Predicts, made on first use (after fork)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="predict"
                )
            return self._executor

    def _predict_call(
        self,
        model: ResolvedModel,
        ref: ModelRef,
        tensor: npt.NDArray[Any],
        call: Call,
        output_filter: list[str],
    ) -> tuple[int | None, list[Outputs | ImageFailure]]:
        """One Predict of ``tensor``'s rows; a bytes model that rejects the batch is asked
        image by image, to tell which of the files it cannot decode."""
        try:
            version, rows = self._predict_rows(model, ref, tensor, call, output_filter)
        except BackendRejected:
            if not isinstance(model.input, BytesInput):
                raise
            if len(tensor) == 1:  # the original bytes were the only input
                return None, [ModelRejectedImage(_REJECTED)]
        else:
            answers: list[Outputs | ImageFailure] = [*rows]
            return version, answers
        # The model could not decode an original file: find which, one image at a time.
        version = None
        answers = []
        for row in range(len(tensor)):
            try:
                version, (outputs,) = self._predict_rows(
                    model, ref, tensor[row : row + 1], call, output_filter
                )
            except BackendRejected:
                answers.append(ModelRejectedImage(_REJECTED))
            else:
                answers.append(outputs)
        return version, answers

    def _predict_rows(
        self,
        model: ResolvedModel,
        ref: ModelRef,
        tensor: npt.NDArray[Any],
        call: Call,
        output_filter: list[str],
    ) -> tuple[int | None, list[Outputs]]:
        """One Predict for every row of ``tensor``; each row's outputs (a one-row slice)."""
        prediction = self.catalog.backend(model.entry).predict(
            ref,
            {model.input.tensor: tensor},
            output_filter=output_filter,
            deadline=call.deadline,
            version_requested=ref is not model.entry.serving,
        )
        return prediction.model_version, _rows(model, prediction.outputs, len(tensor))


def _own_frame(item: imaging.ImageTensor, layout: str) -> Frame:
    """The frame of an image sent at its own size: the input is the tensor's size."""
    height, width = item.array.shape[1:3] if layout == "nchw" else item.array.shape[:2]
    return Frame(item.width, item.height, int(width), int(height), item.transform)


def _placed(
    frames: list[Frame | ImageFailure], *, one_per_call: bool
) -> list[_Decoded | ImageFailure]:
    """Each decoded image's Predict and row: one Predict per image, or all in one."""
    images: list[_Decoded | ImageFailure] = []
    decoded = 0
    for frame in frames:
        if isinstance(frame, Frame):
            call, row = (decoded, 0) if one_per_call else (0, decoded)
            images.append(_Decoded(frame, call, row))
            decoded += 1
        else:
            images.append(frame)
    return images


def _slot(
    image: _Decoded | ImageFailure,
    answers: Sequence[Sequence[Outputs | ImageFailure]],
    mapping: Callable[[Frame, Outputs], R],
) -> Mapped[R] | Failed:
    """One image's slot: its outputs mapped (and timed), or why it has none."""
    if not isinstance(image, _Decoded):
        return Failed(image)
    answer = answers[image.call][image.row]
    if not isinstance(answer, Mapping):
        return Failed(answer)
    start = time.perf_counter()
    result = mapping(image.frame, answer)
    return Mapped(result, time.perf_counter() - start)


def _image_size(frame: Frame) -> ImageSize:
    return ImageSize(frame.image_width, frame.image_height)


def _rows(
    model: ResolvedModel, outputs: Mapping[str, npt.NDArray[Any]], count: int
) -> list[Outputs]:
    """Split a batch answer into one-row outputs per image (BackendError if short)."""
    if count == 1:  # as the model answered: a model may leave a scalar output unbatched
        return [outputs]
    for name, array in outputs.items():
        if array.ndim == 0 or array.shape[0] != count:
            log.error("model %s: output %r has %s rows for %d images", model.name, name,
                      "no" if array.ndim == 0 else array.shape[0], count)  # fmt: skip
            raise BackendError("The model's answer does not match the batch.")
    return [{name: array[i : i + 1] for name, array in outputs.items()} for i in range(count)]


def _output(model: ResolvedModel, outputs: Outputs, role: str) -> npt.NDArray[Any]:
    name = model.outputs[role]
    array = outputs.get(name)
    if array is None or array.ndim == 0 or array.shape[0] < 1:
        log.error("model %s: output %r (%s) missing or empty", model.name, name, role)
        raise BackendError("The model's answer is missing an expected output.")
    return array


def _detection_outputs(
    model: ResolvedModel, outputs: Outputs
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any], int | None]:
    boxes = _output(model, outputs, "boxes")[0]
    classes = _output(model, outputs, "classes")[0]
    scores = _output(model, outputs, "scores")[0]
    count = None
    if "count" in model.outputs:
        count = int(np.asarray(_output(model, outputs, "count")).reshape(-1)[0])
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or len(classes) != len(scores):
        log.error("model %s: detection outputs have unexpected shapes", model.name)
        raise BackendError("The model's answer has an unexpected shape.")
    return boxes, classes, scores, count
