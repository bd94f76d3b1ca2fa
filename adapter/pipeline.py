"""Request -> tensor -> Predict -> friendly result; no Flask in here.

The pipeline owns the order of work and the time spent in each step; the
steps themselves live in :mod:`adapter.imaging`, :mod:`adapter.serving` and
:mod:`adapter.mapping`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from adapter import errors, imaging
from adapter.config import ModelConfig, Settings
from adapter.mapping.classification import Classification, map_classification
from adapter.mapping.detection import Detection, DetectionOptions, Frame, map_detections
from adapter.serving.client import PredictClient, Prediction
from adapter.serving.codec import strings_to_tensor_proto, to_tensor_proto
from adapter.serving.protos.tensor_pb2 import TensorProto

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
    tensor: TensorProto
    frame: Frame

    @property
    def image_size(self) -> ImageSize:
        return ImageSize(self.frame.image_width, self.frame.image_height)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


class Pipeline:
    """Runs detect and classify requests against the configured models."""

    def __init__(self, settings: Settings, client: PredictClient) -> None:
        self.settings = settings
        self.client = client
        self.limits = imaging.Limits(
            max_bytes=settings.max_upload_bytes,
            max_width=settings.max_image_side,
            max_height=settings.max_image_side,
            max_pixels=settings.max_image_pixels,
        )

    def model(self, name: str, task: str | None = None) -> ModelConfig:
        """Look a public model up; 404 if unknown or not of ``task``."""
        config = self.settings.models.get(name)
        if config is None:
            raise errors.UnknownModel(f"There is no model named {name!r}; see GET /v1/models.")
        if task is not None and config.task != task:
            raise errors.NotFound(
                f"Model {name!r} is a {config.task} model; it has no {task} endpoint."
            )
        return config

    def detect(self, name: str, data: bytes, options: DetectionOptions) -> DetectResult:
        """Detect objects in one encoded image with model ``name``."""
        config = self.model(name, "detection")
        prepared, prediction, timings = self._infer(config, data)
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

    def classify(self, name: str, data: bytes, top_k: int) -> ClassifyResult:
        """Classify one encoded image with model ``name``; the ``top_k`` best classes."""
        config = self.model(name, "classification")
        prepared, prediction, timings = self._infer(config, data)
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

    def _infer(self, config: ModelConfig, data: bytes) -> tuple[_Prepared, Prediction, Timings]:
        """Decode (or pass through) the image and run Predict, timing both."""
        start = time.perf_counter()
        prepared = self._prepare(config, data)
        decoded = time.perf_counter()
        prediction = self._predict(config, prepared)
        done = time.perf_counter()
        return (
            prepared,
            prediction,
            Timings(decode=_ms(decoded - start), inference=_ms(done - decoded)),
        )

    def _prepare(self, config: ModelConfig, data: bytes) -> _Prepared:
        spec = config.input
        try:
            if spec.encoding == "bytes":
                info = imaging.probe(data, limits=self.limits)
                frame = Frame(info.width, info.height, info.width, info.height, _Identity())
                return _Prepared(strings_to_tensor_proto([data]), frame)
            preprocessing = spec.preprocessing
            assert preprocessing is not None  # set for every tensor input
            image = preprocessing.run(data, self.limits)
        except imaging.ImageError as exc:
            raise _image_error(exc) from None
        width, height = preprocessing.size
        frame = Frame(image.width, image.height, width, height, image.transform)
        return _Prepared(to_tensor_proto(image.array[np.newaxis]), frame)

    def _predict(self, config: ModelConfig, prepared: _Prepared) -> Prediction:
        try:
            prediction = self.client.predict(
                config.serving,
                {config.input.tensor: prepared.tensor},
                output_filter=sorted(set(config.outputs.values())),
                timeout_s=config.deadline_s,
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
