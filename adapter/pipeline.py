"""Request -> tensor -> Predict -> friendly result; no Flask in here.

The pipeline owns the order of work and the time spent in each step; the
steps themselves live in :mod:`adapter.imaging`, :mod:`adapter.serving` and
:mod:`adapter.mapping`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from adapter import errors, imaging
from adapter.catalog import Catalog
from adapter.config import Settings
from adapter.mapping.classification import DEFAULT_TOP_K, Classification, map_classification
from adapter.mapping.detection import Detection, DetectionOptions, Frame, map_detections
from adapter.registry import RegistryEntry
from adapter.serving.resilience import Deadline
from adapter.serving.servable import ModelRef, Prediction

log = logging.getLogger(__name__)

_Outputs = Mapping[str, npt.NDArray[Any]]  # one image's outputs by name, each with one row


@dataclass(frozen=True)
class ModelInfo:
    """The public model name and the TF Serving version that answered."""

    name: str
    version: int | None


@dataclass(frozen=True)
class ImageSize:
    """The original image's size in pixels."""

    width: int
    height: int


@dataclass
class Timings:
    """Milliseconds spent decoding, waiting on the model server, and mapping."""

    decode: float = 0.0
    inference: float = 0.0
    mapping: float = 0.0


@dataclass(frozen=True)
class DetectResult:
    """The answer to a detect request."""

    model: ModelInfo
    image: ImageSize
    detections: list[Detection]
    timings_ms: Timings = field(default_factory=Timings)


@dataclass(frozen=True)
class ClassifyResult:
    """The answer to a classify request."""

    model: ModelInfo
    image: ImageSize
    classifications: list[Classification]
    timings_ms: Timings = field(default_factory=Timings)


R = TypeVar("R", DetectResult, ClassifyResult)


@dataclass(frozen=True)
class _Identity:
    """The transform of a model that decoded the original bytes itself."""

    def to_original(self, x: float, y: float) -> tuple[float, float]:
        return x, y


@dataclass(frozen=True)
class _Prepared:
    tensor: npt.NDArray[Any]
    frame: Frame

    @property
    def image_size(self) -> ImageSize:
        return ImageSize(self.frame.image_width, self.frame.image_height)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


@dataclass(frozen=True)
class ClassifyOptions:
    """What to return: the ``top_k`` best classes (default 5), of the ``labels`` named."""

    top_k: int = DEFAULT_TOP_K
    labels: frozenset[str] | None = None


@dataclass(frozen=True)
class _Run:
    """One batch's model, per-image outcome (tensor and outputs, or a 4xx) and timings."""

    config: RegistryEntry
    model: ModelInfo
    items: list[tuple[_Prepared, _Outputs] | errors.ApiError]
    decode_ms: float
    inference_ms: float

    def timings(self, mapping_ms: float) -> Timings:
        """An image's timings: the batch's decode and inference, its own mapping."""
        return Timings(decode=self.decode_ms, inference=self.inference_ms, mapping=mapping_ms)


@dataclass(frozen=True)
class Call:
    """How one request calls its model: the deadline, and a version the request picked."""

    deadline: Deadline
    version: str | None = None


class Pipeline:
    """Runs detect and classify requests against the configured models."""

    def __init__(self, settings: Settings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.catalog = catalog or Catalog(settings)
        self.limits = imaging.Limits(
            max_bytes=settings.max_upload_bytes,
            max_width=settings.max_image_side,
            max_height=settings.max_image_side,
            max_pixels=settings.max_image_pixels,
        )

    def model(self, name: str, task: str | None = None) -> RegistryEntry:
        """Look a public model up; 404 if unknown or not of ``task``."""
        return self.catalog.model(name, task)

    def detect(
        self, name: str, images: Sequence[bytes], options: DetectionOptions, call: Call
    ) -> list[DetectResult | errors.ApiError]:
        """Detect objects in each encoded image with model ``name``, as one batch.

        An image that can't be decoded gets its 4xx error in its place; a
        backend failure raises, as it fails them all.
        """

        def detections(config: RegistryEntry, frame: Frame, outputs: _Outputs) -> list[Detection]:
            return map_detections(
                *self._detection_outputs(config, outputs),
                frame=frame,
                labels=config.labels,
                options=options,
            )

        config = self.model(name, "detection")
        return self._each(config, images, call, options.labels, DetectResult, detections)

    def classify(
        self, name: str, images: Sequence[bytes], options: ClassifyOptions, call: Call
    ) -> list[ClassifyResult | errors.ApiError]:
        """Classify each encoded image with model ``name``, as one batch (errors as detect)."""

        def classes(config: RegistryEntry, frame: Frame, outputs: _Outputs) -> list[Classification]:
            return map_classification(
                self._output(config, outputs, "probabilities")[0],
                labels=config.labels,
                top_k=options.top_k,
                background_class=config.background_class,
                only=options.labels,
            )

        config = self.model(name, "classification")
        return self._each(config, images, call, options.labels, ClassifyResult, classes)

    def _each(
        self,
        config: RegistryEntry,
        images: Sequence[bytes],
        call: Call,
        labels: frozenset[str] | None,
        result: type[R],
        mapping: Callable[[RegistryEntry, Frame, _Outputs], list[Any]],
    ) -> list[R | errors.ApiError]:
        """Run the batch, then map each image's outputs into a ``result`` (or keep its error)."""
        self._check_labels(config, labels)
        run = self._infer(config, images, call)
        results: list[R | errors.ApiError] = []
        for item in run.items:
            if isinstance(item, errors.ApiError):
                results.append(item)
                continue
            prepared, outputs = item
            start = time.perf_counter()
            found = mapping(
                run.config, prepared.frame, outputs
            )  # config completed from the signature
            timings = run.timings(_ms(time.perf_counter() - start))
            results.append(result(run.model, prepared.image_size, found, timings_ms=timings))
        return results

    def _check_labels(self, config: RegistryEntry, wanted: frozenset[str] | None) -> None:
        """422 naming ``labels`` if the filter names a label the model doesn't have."""
        if wanted is None:
            return
        known = set(config.label_names)
        unknown = sorted(wanted - known) if known else []
        if unknown:
            names = ", ".join(repr(label) for label in unknown)
            raise errors.ValidationFailed(
                f"Model {config.name!r} has no label {names}; see GET /v1/models/{config.name}.",
                errors={"labels": [f"Unknown label(s): {names}."]},
            )

    def _infer(self, config: RegistryEntry, images: Sequence[bytes], call: Call) -> _Run:
        """Decode (or pass through) the images and run one Predict, timing both."""
        ref = self._servable(config, call.version)
        config = self.catalog.ready_config(config, call.deadline)
        start = time.perf_counter()
        prepared = self._prepare(config, images)
        decoded = time.perf_counter()
        good = [item for item in prepared if isinstance(item, _Prepared)]
        version: int | None = None
        rows: list[_Outputs | errors.ApiError] = []
        if good:
            version, rows = self._predict(config, ref, good, call)
        done = time.perf_counter()
        answers = iter(rows)
        items: list[tuple[_Prepared, _Outputs] | errors.ApiError] = []
        for item in prepared:
            if isinstance(item, errors.ApiError):
                items.append(item)
                continue
            answer = next(answers)
            items.append(answer if isinstance(answer, errors.ApiError) else (item, answer))
        return _Run(
            config=config,
            model=ModelInfo(config.name, version),
            items=items,
            decode_ms=_ms(decoded - start),
            inference_ms=_ms(done - decoded),
        )

    def _servable(self, config: RegistryEntry, version: str | None) -> ModelRef:
        """The registry's servable, or the version/label the request picked if it may."""
        if version is None:
            return config.serving
        if version.isdigit() and int(version) in config.allow_versions:
            return dataclasses.replace(config.serving, version=int(version), version_label=None)
        if version in config.allow_labels:
            return dataclasses.replace(config.serving, version=None, version_label=version)
        allowed = [str(v) for v in config.allow_versions] + list(config.allow_labels)
        hint = f"it allows {', '.join(allowed)}" if allowed else "it serves one version only"
        raise errors.ValidationFailed(
            f"Model {config.name!r} cannot be asked for version {version!r}: {hint}.",
            errors={"version": [f"Must be one of: {', '.join(allowed)}." if allowed
                                else "This model does not allow choosing a version."]},
        )  # fmt: skip

    def _prepare(
        self, config: RegistryEntry, images: Sequence[bytes]
    ) -> list[_Prepared | errors.ApiError]:
        """Each image as a one-row tensor (a view into one batch array), or its 4xx error."""
        spec = config.input
        if spec.encoding == "bytes":
            return [self._probe(data) for data in images]
        preprocessing = spec.preprocessing
        assert preprocessing is not None  # set for every tensor input
        batch = preprocessing.run_batch(images, self.limits)
        width, height = preprocessing.size
        prepared: list[_Prepared | errors.ApiError] = []
        for data, item in zip(images, batch.items, strict=True):
            if isinstance(item, imaging.ImageError):
                prepared.append(_image_error(item, empty=not data))
                continue
            frame = Frame(item.width, item.height, width, height, item.transform)
            prepared.append(_Prepared(item.array[np.newaxis], frame))
        return prepared

    def _probe(self, data: bytes) -> _Prepared | errors.ApiError:
        """The original bytes as a DT_STRING row, after a header check."""
        try:
            info = imaging.probe(data, limits=self.limits)
        except imaging.ImageError as exc:
            return _image_error(exc, empty=not data)
        frame = Frame(info.width, info.height, info.width, info.height, _Identity())
        return _Prepared(np.array([data], dtype=object), frame)

    def _predict(
        self, config: RegistryEntry, ref: ModelRef, items: Sequence[_Prepared], call: Call
    ) -> tuple[int | None, list[_Outputs | errors.ApiError]]:
        """One Predict for all ``items``; each item's outputs (a one-row slice), in order."""
        tensor = np.concatenate([item.tensor for item in items])
        try:
            prediction = self._call(config, ref, tensor, call)
        except errors.BackendRejected:
            if config.input.encoding != "bytes":
                raise
            if len(items) == 1:  # the original bytes were the only input
                raise errors.InvalidImage("The model could not decode this image.") from None
            # One file the model can't decode fails the whole batch: find it.
            return self._predict_each(config, ref, items, call)
        return prediction.model_version, _rows(config, prediction, len(items))

    def _predict_each(
        self, config: RegistryEntry, ref: ModelRef, items: Sequence[_Prepared], call: Call
    ) -> tuple[int | None, list[_Outputs | errors.ApiError]]:
        version: int | None = None
        rows: list[_Outputs | errors.ApiError] = []
        for item in items:
            try:
                version, (row,) = self._predict(config, ref, [item], call)
            except errors.InvalidImage as exc:
                row = exc
            rows.append(row)
        return version, rows

    def _call(
        self, config: RegistryEntry, ref: ModelRef, tensor: npt.NDArray[Any], call: Call
    ) -> Prediction:
        assert config.input.tensor is not None  # set once the model is resolved
        return self.catalog.backend(config).predict(
            ref,
            {config.input.tensor: tensor},
            output_filter=sorted(set(config.outputs.values())),
            deadline=call.deadline,
            version_requested=ref is not config.serving,
        )

    def _output(self, config: RegistryEntry, outputs: _Outputs, role: str) -> npt.NDArray[Any]:
        name = config.outputs[role]
        array = outputs.get(name)
        if array is None or array.ndim == 0 or array.shape[0] < 1:
            log.error("model %s: output %r (%s) missing or empty", config.name, name, role)
            raise errors.BackendError("The model's answer is missing an expected output.")
        return array

    def _detection_outputs(
        self, config: RegistryEntry, outputs: _Outputs
    ) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any], int | None]:
        boxes = self._output(config, outputs, "boxes")[0]
        classes = self._output(config, outputs, "classes")[0]
        scores = self._output(config, outputs, "scores")[0]
        count = None
        if "count" in config.outputs:
            count = int(np.asarray(self._output(config, outputs, "count")).reshape(-1)[0])
        if boxes.ndim != 2 or boxes.shape[-1] != 4 or len(classes) != len(scores):
            log.error("model %s: detection outputs have unexpected shapes", config.name)
            raise errors.BackendError("The model's answer has an unexpected shape.")
        return boxes, classes, scores, count


def _rows(
    config: RegistryEntry, prediction: Prediction, count: int
) -> list[_Outputs | errors.ApiError]:
    """Split a batch answer into one-row outputs per image (500-class error if short)."""
    outputs = prediction.outputs
    if count == 1:  # as the model answered: a model may leave a scalar output unbatched
        return [outputs]
    for name, array in outputs.items():
        if array.ndim == 0 or array.shape[0] != count:
            log.error("model %s: output %r has %s rows for %d images", config.name, name,
                      "no" if array.ndim == 0 else array.shape[0], count)  # fmt: skip
            raise errors.BackendError("The model's answer does not match the batch.")
    return [{name: array[i : i + 1] for name, array in outputs.items()} for i in range(count)]


def _image_error(exc: imaging.ImageError, *, empty: bool = False) -> errors.ApiError:
    if empty:
        return errors.InvalidImage("The uploaded image is empty.")
    if isinstance(exc, imaging.UnsupportedImage):
        return errors.UnsupportedImage(
            "The upload is not an image in a supported format (JPEG, PNG, WebP, GIF or BMP)."
        )
    if isinstance(exc, imaging.ImageTooLarge):
        return errors.ImageTooLarge(f"The image is too large: {exc}")
    return errors.InvalidImage(f"The image could not be decoded: {exc}")
