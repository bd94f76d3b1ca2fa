"""Request -> tensor -> Predict -> friendly result; no Flask in here.

The pipeline owns the order of work and the time spent in each step; the
steps themselves live in :mod:`adapter.imaging`, :mod:`adapter.serving` and
:mod:`adapter.mapping`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from adapter import errors, imaging
from adapter.catalog import Catalog
from adapter.config import ModelConfig, Settings
from adapter.mapping.classification import Classification, map_classification
from adapter.mapping.detection import Detection, DetectionOptions, Frame, map_detections
from adapter.serving.resilience import Deadline
from adapter.serving.servable import ModelRef, Prediction

log = logging.getLogger(__name__)


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

    def model(self, name: str, task: str | None = None) -> ModelConfig:
        """Look a public model up; 404 if unknown or not of ``task``."""
        return self.catalog.model(name, task)

    def detect(self, name: str, data: bytes, options: DetectionOptions, call: Call) -> DetectResult:
        """Detect objects in one encoded image with model ``name``."""
        config, prepared, prediction, timings = self._infer(name, "detection", data, call)
        start = time.perf_counter()
        detections = map_detections(
            *self._detection_outputs(config, prediction.outputs),
            frame=prepared.frame,
            labels=config.labels,
            options=options,
        )
        timings.mapping = _ms(time.perf_counter() - start)
        return DetectResult(
            model=ModelInfo(name, prediction.model_version),
            image=prepared.image_size,
            detections=detections,
            timings_ms=timings,
        )

    def classify(self, name: str, data: bytes, top_k: int, call: Call) -> ClassifyResult:
        """Classify one encoded image with model ``name``; the ``top_k`` best classes."""
        config, prepared, prediction, timings = self._infer(name, "classification", data, call)
        start = time.perf_counter()
        classifications = map_classification(
            self._output(config, prediction.outputs, "probabilities")[0],
            labels=config.labels,
            top_k=top_k,
            background_class=config.background_class,
        )
        timings.mapping = _ms(time.perf_counter() - start)
        return ClassifyResult(
            model=ModelInfo(name, prediction.model_version),
            image=prepared.image_size,
            classifications=classifications,
            timings_ms=timings,
        )

    def _infer(
        self, name: str, task: str, data: bytes, call: Call
    ) -> tuple[ModelConfig, _Prepared, Prediction, Timings]:
        """Decode (or pass through) the image and run Predict, timing both."""
        config = self.model(name, task)
        ref = self._servable(config, call.version)
        config = self.catalog.ready_config(config, call.deadline)
        start = time.perf_counter()
        prepared = self._prepare(config, data)
        decoded = time.perf_counter()
        prediction = self._predict(config, ref, prepared, call)
        done = time.perf_counter()
        timings = Timings(decode=_ms(decoded - start), inference=_ms(done - decoded))
        return config, prepared, prediction, timings

    def _servable(self, config: ModelConfig, version: str | None) -> ModelRef:
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

    def _prepare(self, config: ModelConfig, data: bytes) -> _Prepared:
        spec = config.input
        try:
            if spec.encoding == "bytes":
                info = imaging.probe(data, limits=self.limits)
                frame = Frame(info.width, info.height, info.width, info.height, _Identity())
                return _Prepared(np.array([data], dtype=object), frame)
            preprocessing = spec.preprocessing
            assert preprocessing is not None  # set for every tensor input
            image = preprocessing.run(data, self.limits)
        except imaging.ImageError as exc:
            raise _image_error(exc) from None
        width, height = preprocessing.size
        frame = Frame(image.width, image.height, width, height, image.transform)
        return _Prepared(image.array[np.newaxis], frame)

    def _predict(
        self, config: ModelConfig, ref: ModelRef, prepared: _Prepared, call: Call
    ) -> Prediction:
        assert config.input.tensor is not None  # set once the model is resolved
        try:
            prediction = self.catalog.backend(config).predict(
                ref,
                {config.input.tensor: prepared.tensor},
                output_filter=sorted(set(config.outputs.values())),
                deadline=call.deadline,
                version_requested=ref is not config.serving,
            )
        except errors.BackendRejected:
            if config.input.encoding != "bytes":
                raise
            # The original bytes were the only input: the model could not decode them.
            raise errors.InvalidImage("The model could not decode this image.") from None
        return prediction

    def _output(
        self, config: ModelConfig, outputs: Mapping[str, npt.NDArray[Any]], role: str
    ) -> npt.NDArray[Any]:
        name = config.outputs[role]
        array = outputs.get(name)
        if array is None or array.ndim == 0 or array.shape[0] < 1:
            log.error("model %s: output %r (%s) missing or empty", config.name, name, role)
            raise errors.BackendError("The model's answer is missing an expected output.")
        return array

    def _detection_outputs(
        self, config: ModelConfig, outputs: Mapping[str, npt.NDArray[Any]]
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


def _image_error(exc: imaging.ImageError) -> errors.ApiError:
    if isinstance(exc, imaging.UnsupportedImage):
        return errors.UnsupportedImage(
            "The upload is not an image in a supported format (JPEG, PNG, WebP, GIF or BMP)."
        )
    if isinstance(exc, imaging.ImageTooLarge):
        return errors.ImageTooLarge(f"The image is too large: {exc}")
    return errors.InvalidImage(f"The image could not be decoded: {exc}")
