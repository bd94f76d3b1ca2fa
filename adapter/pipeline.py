"""Images -> one input tensor -> one Predict -> a result per image; no HTTP in here.

The pipeline owns the order of work and the time spent in each step; the
steps themselves live in :mod:`adapter.imaging`, :mod:`adapter.serving` and
:mod:`adapter.mapping`. It takes a :class:`~adapter.resolution.ResolvedModel`,
so every field it reads is known, and answers a
:class:`~adapter.results.BatchResult`: one slot per image (its result, or why
it has none) and the request's timings.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from adapter import imaging
from adapter.catalog import Catalog
from adapter.exceptions import BackendError, BackendRejected, InvalidOption, ModelRejectedImage
from adapter.mapping.classification import DEFAULT_TOP_K, map_classification
from adapter.mapping.detection import DetectionOptions, Frame, map_detections
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
    """What to return: the ``top_k`` best classes (default 5), of the ``labels`` named."""

    top_k: int = DEFAULT_TOP_K
    labels: frozenset[str] | None = None


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
    """An image ready for the model: its geometry, and its row in the batch tensor."""

    frame: Frame
    row: int


@dataclass(frozen=True)
class _Inputs:
    """The batch tensor (a row per decoded image, None if none did), and each image's state."""

    tensor: npt.NDArray[Any] | None
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
    """Runs batches of images through resolved models, on the catalog's backends."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def detect(
        self,
        model: ResolvedModel,
        ref: ModelRef,
        images: Sequence[bytes],
        options: DetectionOptions,
        call: Call,
    ) -> BatchResult[DetectResult]:
        """Detect objects in each encoded image, as one Predict to ``ref``."""

        def detections(frame: Frame, outputs: Outputs) -> DetectResult:
            found = map_detections(
                *_detection_outputs(model, outputs),
                frame=frame,
                labels=model.labels,
                options=options,
            )
            return DetectResult(_image_size(frame), found)

        return self._run(model, ref, images, call, detections)

    def classify(
        self,
        model: ResolvedModel,
        ref: ModelRef,
        images: Sequence[bytes],
        options: ClassifyOptions,
        call: Call,
    ) -> BatchResult[ClassifyResult]:
        """Classify each encoded image, as one Predict to ``ref``."""

        def classes(frame: Frame, outputs: Outputs) -> ClassifyResult:
            found = map_classification(
                _output(model, outputs, "probabilities")[0],
                labels=model.labels,
                top_k=options.top_k,
                background_class=model.entry.background_class,
                only=options.labels,
            )
            return ClassifyResult(_image_size(frame), found)

        return self._run(model, ref, images, call, classes)

    def _run(
        self,
        model: ResolvedModel,
        ref: ModelRef,
        images: Sequence[bytes],
        call: Call,
        mapping: Callable[[Frame, Outputs], R],
    ) -> BatchResult[R]:
        """Decode, predict once, map each image: the batch's slots and the request's timings.

        An image that fails to decode (or that a bytes model rejects) gets a
        :class:`~adapter.results.Failed` slot; a backend failure raises, as it
        fails them all.
        """
        start = time.perf_counter()
        inputs = self._inputs(model, images)
        decoded = time.perf_counter()
        version, answers = self._predict(model, ref, inputs.tensor, call)
        predicted = time.perf_counter()
        slots = [_slot(image, answers, mapping) for image in inputs.images]
        timings = Timings(
            decode_s=decoded - start,
            inference_s=predicted - decoded,
            mapping_s=sum(slot.mapping_s for slot in slots if isinstance(slot, Mapped)),
        )
        return BatchResult(model.name, version, tuple(slots), timings)

    def _inputs(self, model: ResolvedModel, images: Sequence[bytes]) -> _Inputs:
        """The decoded images' rows as one batch tensor, and each image's frame or failure."""
        if isinstance(model.input, BytesInput):
            frames = [self._probe(data) for data in images]
            originals = [data for data, frame in zip(images, frames, strict=True)
                         if isinstance(frame, Frame)]  # fmt: skip
            tensor = np.array(originals, dtype=object)
        else:
            batch = model.input.preprocessor.run_batch(images)
            width, height = model.input.preprocessing.size
            frames = [
                item if isinstance(item, imaging.ImageError)
                else Frame(item.width, item.height, width, height, item.transform)
                for item in batch.items
            ]  # fmt: skip
            good = [i for i, frame in enumerate(frames) if isinstance(frame, Frame)]
            # A failed image's slot holds padding: send only the rows that decoded.
            tensor = batch.array if len(good) == len(frames) else batch.array[good]
        decoded: list[_Decoded | ImageFailure] = []
        rows = 0
        for frame in frames:
            if isinstance(frame, Frame):
                decoded.append(_Decoded(frame, rows))
                rows += 1
            else:
                decoded.append(frame)
        return _Inputs(tensor if rows else None, decoded)

    def _probe(self, data: bytes) -> Frame | ImageFailure:
        """A bytes model's image frame, from a header check; the model decodes the rest."""
        try:
            info = imaging.probe(data, limits=self.catalog.limits)
        except imaging.ImageError as exc:
            return exc
        return Frame(info.width, info.height, info.width, info.height, _Identity())

    def _predict(
        self, model: ResolvedModel, ref: ModelRef, tensor: npt.NDArray[Any] | None, call: Call
    ) -> tuple[int | None, list[Outputs | ImageFailure]]:
        """The version that answered, and each row's outputs (or why it has none), in order."""
        if tensor is None:
            return None, []
        try:
            version, rows = self._predict_rows(model, ref, tensor, call)
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
                version, (outputs,) = self._predict_rows(model, ref, tensor[row : row + 1], call)
            except BackendRejected:
                answers.append(ModelRejectedImage(_REJECTED))
            else:
                answers.append(outputs)
        return version, answers

    def _predict_rows(
        self, model: ResolvedModel, ref: ModelRef, tensor: npt.NDArray[Any], call: Call
    ) -> tuple[int | None, list[Outputs]]:
        """One Predict for every row of ``tensor``; each row's outputs (a one-row slice)."""
        prediction = self.catalog.backend(model.entry).predict(
            ref,
            {model.input.tensor: tensor},
            output_filter=sorted(set(model.outputs.values())),
            deadline=call.deadline,
            version_requested=ref is not model.entry.serving,
        )
        return prediction.model_version, _rows(model, prediction.outputs, len(tensor))


def _slot(
    image: _Decoded | ImageFailure,
    answers: Sequence[Outputs | ImageFailure],
    mapping: Callable[[Frame, Outputs], R],
) -> Mapped[R] | Failed:
    """One image's slot: its outputs mapped (and timed), or why it has none."""
    if not isinstance(image, _Decoded):
        return Failed(image)
    answer = answers[image.row]
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
