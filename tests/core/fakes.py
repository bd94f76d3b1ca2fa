"""An in-process model server for the core's fast tests: the real ``Transport`` protocol.

:class:`FakeModelServer` answers ``predict``, ``model_status`` and
``signature_defs`` the way the real transports do: numpy arrays in and out,
:class:`~adapter.serving.servable.RpcFailure` with TF Serving's status codes
for an unknown model, a wrong input name or an input the model rejects. Its
models are small numpy functions that really read the tensors they are sent,
so a test sees what the pipeline put in them. The real model server, over
real gRPC, is what ``tests/e2e`` and ``tests/api`` use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt

from adapter import imaging
from adapter.catalog import BackendPool
from adapter.config import Settings
from adapter.registry import BackendAddress
from adapter.serving.channel import ChannelSettings
from adapter.serving.servable import (
    ModelRef,
    Prediction,
    RpcFailure,
    SignatureDefs,
    Transport,
    VersionStatus,
)
from tests.core.signatures import (
    ATTRIBUTES_CLASSIFIER,
    BYTES_CLASSIFIER,
    CLASSIFIER,
    DETECTOR,
    KERAS_CLASSIFIER,
    MASKS_DETECTOR,
    YOLO_DETECTOR,
    ZOO_DETECTOR,
    ZOO_OUTPUTS,
)

Arrays = Mapping[str, npt.NDArray[Any]]
INK = 128  # a pixel darker than this is ink, for the fake detector


@dataclass
class FakeModel:
    """A servable: its signatures, its versions and what Predict computes."""

    signatures: SignatureDefs
    run: Callable[[npt.NDArray[Any]], dict[str, npt.NDArray[Any]]]
    versions: list[VersionStatus] = field(default_factory=lambda: [VersionStatus(1, "AVAILABLE")])


@dataclass(frozen=True)
class PredictCall:
    """One Predict as the server received it."""

    model: ModelRef
    inputs: dict[str, npt.NDArray[Any]]
    output_filter: tuple[str, ...]
    timeout_s: float


def detect_ink(images: npt.NDArray[Any]) -> dict[str, npt.NDArray[Any]]:
    """A TF OD API detector: one box around each image's dark pixels, class 3, score 0.9.

    Boxes are normalized ``[ymin, xmin, ymax, xmax]`` of the input tensor, so
    the adapter must undo its own letterbox or stretch to get them right.
    """
    count = len(images)
    boxes = np.zeros((count, 100, 4), np.float32)
    scores = np.zeros((count, 100), np.float32)
    found = np.zeros((count,), np.float32)
    for row, image in enumerate(images):
        ys, xs = np.nonzero(image.min(axis=-1) < INK)
        if len(xs):
            height, width = image.shape[:2]
            boxes[row, 0] = (ys.min() / height, xs.min() / width,
                             (ys.max() + 1) / height, (xs.max() + 1) / width)  # fmt: skip
            scores[row, 0], found[row] = 0.9, 1
    classes = np.full((count, 100), 3, np.float32)
    return {"detection_boxes": boxes, "detection_classes": classes,
            "detection_scores": scores, "num_detections": found}  # fmt: skip


def classify_brightness(images: npt.NDArray[Any]) -> dict[str, npt.NDArray[Any]]:
    """A classifier over 11 classes: mean brightness ``v`` (0..255) is class ``1 + v // 26``."""
    means = images.reshape(len(images), -1).mean(axis=1)
    best = np.minimum(1 + means.astype(np.int64) // 26, 10)
    probabilities = np.full((len(images), 11), 0.01, np.float32)
    probabilities[np.arange(len(images)), best] = 0.9
    return {"classes": best, "probabilities": probabilities}


def classify_files(files: npt.NDArray[Any]) -> dict[str, npt.NDArray[Any]]:
    """The bytes classifier: decodes each file in the "graph"; one it can't read fails the call."""
    try:
        images = np.stack([imaging.decode_resize(data, (32, 32)) for data in files])
    except imaging.ImageError:
        raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, "Invalid JPEG data") from None
    return classify_brightness(images.astype(np.float32))


def _batch_of_one(images: npt.NDArray[Any]) -> None:
    if len(images) != 1:
        raise RpcFailure(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input_tensor must have shape [1,?,?,3], got [{len(images)},...]",
        )


def detect_ink_zoo(images: npt.NDArray[Any], *, masks: bool = False) -> dict[str, Any]:
    """:func:`detect_ink` as a Detection Zoo export: a batch of 1 only, and the heavy
    outputs; ``masks``: Mask R-CNN's box-relative masks, the whole box inked."""
    _batch_of_one(images)
    outputs: dict[str, Any] = detect_ink(images)
    for name, (_, shape) in ZOO_OUTPUTS.items():
        if name not in outputs:
            outputs[name] = np.zeros(shape, np.float32)
    if masks:
        outputs["detection_masks"] = np.ones((1, 100, 28, 28), np.float32)
    return outputs


YOLO_COPIES = ((0.0, 0.0, 1.0), (2.0, -1.0, 0.95), (-1.5, 2.0, 0.9))  # dx, dy px, score factor


def detect_ink_yolo(images: npt.NDArray[Any]) -> dict[str, Any]:
    """A YOLOv8 head over float 0..1 [1, 640, 640, 3]: [1, 14, 8400], three overlapping
    candidates of class 3 around the dark pixels (cx, cy, w, h in input pixels)."""
    _batch_of_one(images)
    head = np.zeros((1, 14, 8400), np.float32)
    ys, xs = np.nonzero(images[0].min(axis=-1) < 0.25)  # darker than the grey padding
    if len(xs):
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        for anchor, (dx, dy, factor) in enumerate(YOLO_COPIES):
            head[0, :4, anchor] = ((x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy, x1 - x0, y1 - y0)
            head[0, 4 + 3, anchor] = 0.9 * factor
    return {"output_0": head}


def brightness_logits(images: npt.NDArray[Any]) -> dict[str, Any]:
    """:func:`classify_brightness` as a Keras export: 10 raw logits in ``output_0``."""
    probabilities = classify_brightness(images)["probabilities"][:, 1:]
    return {"output_0": np.log(probabilities) + 7.0}


def demo_models() -> dict[str, FakeModel]:
    """The demo registry's servables, by TF Serving name."""
    return {
        "digit_detector": FakeModel(DETECTOR, detect_ink),
        "digit_classifier": FakeModel(CLASSIFIER, classify_brightness),
        "digit_classifier_bytes": FakeModel(BYTES_CLASSIFIER, classify_files),
        "digit_detector_zoo": FakeModel(ZOO_DETECTOR, detect_ink_zoo),
        "digit_detector_masks": FakeModel(
            MASKS_DETECTOR, lambda images: detect_ink_zoo(images, masks=True)
        ),
        "digit_yolo": FakeModel(YOLO_DETECTOR, detect_ink_yolo),
        "digit_classifier_keras": FakeModel(KERAS_CLASSIFIER, brightness_logits),
        "digit_attributes": FakeModel(
            ATTRIBUTES_CLASSIFIER,
            lambda images: {"output_0": np.zeros((len(images), 13), np.float32)},
        ),
    }


class FakeModelServer:
    """A :class:`~adapter.serving.servable.Transport` to models held in this process.

    ``calls`` records every Predict; ``status_calls`` and ``signature_calls``
    count the metadata calls; ``fail_next`` makes the next Predicts raise (the
    last one given repeats, as a server that stays down); ``delay_s`` is how
    long each Predict takes; ``most_in_flight`` the most Predicts it served at once.
    """

    target = "fake:8500"

    def __init__(self, models: dict[str, FakeModel] | None = None, *, delay_s: float = 0) -> None:
        self.models = demo_models() if models is None else models
        self.delay_s = delay_s
        self.calls: list[PredictCall] = []
        self.status_calls = 0
        self.signature_calls = 0
        self.message_limits: tuple[int, int] | None = None
        self.fail_next: list[RpcFailure] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def _model(self, ref: ModelRef) -> FakeModel:
        model = self.models.get(ref.name)
        if model is None:
            raise RpcFailure(grpc.StatusCode.NOT_FOUND, f"Servable not found: {ref.name}")
        return model

    def predict(
        self,
        model: ModelRef,
        inputs: Arrays,
        *,
        output_filter: Sequence[str] = (),
        timeout_s: float,
    ) -> Prediction:
        self.calls.append(PredictCall(model, dict(inputs), tuple(output_filter), timeout_s))
        if self.fail_next:
            failure = self.fail_next.pop(0) if len(self.fail_next) > 1 else self.fail_next[0]
            raise RpcFailure(failure.code, failure.details)
        served = self._model(model)
        signature = served.signatures[model.signature]
        if set(inputs) != set(signature.inputs):
            raise RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, f"inputs {sorted(inputs)}")
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay_s)
            outputs = served.run(next(iter(inputs.values())))
        finally:
            with self._lock:
                self.in_flight -= 1
        wanted = output_filter or list(outputs)
        return Prediction({name: outputs[name] for name in wanted}, served.versions[-1].version)

    def model_status(self, model: ModelRef, *, timeout_s: float) -> list[VersionStatus]:
        self.status_calls += 1
        return list(self._model(model).versions)

    def signature_defs(self, model: ModelRef, *, timeout_s: float) -> SignatureDefs:
        self.signature_calls += 1
        return self._model(model).signatures

    def set_message_limits(self, send_bytes: int, receive_bytes: int) -> None:
        self.message_limits = (send_bytes, receive_bytes)

    def close(self) -> None:
        pass


def fake_pool(settings: Settings, server: FakeModelServer) -> BackendPool:
    """A backend pool whose every backend reaches ``server`` (with the real retries and breaker)."""

    def connect(address: BackendAddress, channel: ChannelSettings) -> Transport:
        return server

    return BackendPool(settings, connect)
