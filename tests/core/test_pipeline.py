"""The pipeline through the Service: decode, one Predict, a slot per image, timings.

The model server is :class:`~tests.core.fakes.FakeModelServer`, in process:
its detector boxes the dark pixels of whatever tensor it is sent, so a box
that lands on the drawn rectangle in original pixels proves the tensor, the
letterbox and the mapping back all agree.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from adapter import exceptions, imaging
from adapter.config import Settings
from adapter.mapping.detection import DetectionOptions
from adapter.pipeline import Call, ClassifyOptions
from adapter.results import Failed, Mapped
from adapter.service import Service
from adapter.serving.resilience import Deadline
from adapter.serving.servable import RpcFailure
from tests.core.fakes import FakeModelServer, fake_pool
from tests.helpers import encode

RECT = (120, 90, 200, 150)  # x_min, y_min, x_max, y_max of the dark rectangle


def photo(width: int = 400, height: int = 300, fmt: str = "PNG") -> bytes:
    """A white image with one black rectangle at :data:`RECT`."""
    pixels = np.full((height, width, 3), 255, np.uint8)
    x0, y0, x1, y1 = RECT
    pixels[y0:y1, x0:x1] = 0
    return encode(pixels, fmt)


def gray(level: int) -> bytes:
    return encode(np.full((40, 40, 3), level, np.uint8), "PNG")


def call(timeout_s: float = 5.0) -> Call:
    return Call(Deadline(timeout_s))


@pytest.mark.parametrize("model", ["digits", "digits-stretch"])
def test_a_box_maps_back_to_the_original_pixels(service: Service, model: str) -> None:
    result = service.detect(model, [photo()], DetectionOptions(), call())
    slot = result.single()
    assert (slot.result.image.width, slot.result.image.height) == (400, 300)
    (found,) = slot.result.detections
    assert (found.label, found.score) == ("2", pytest.approx(0.9))
    box = (found.box.x_min, found.box.y_min, found.box.x_max, found.box.y_max)
    # The model saw a 320x320 tensor; one tensor pixel is at most 1.25 original pixels.
    assert box == pytest.approx(RECT, abs=1.5)
    assert result.model == model
    assert result.version == 1


def test_one_predict_carries_only_the_images_that_decoded(
    service: Service, server: FakeModelServer
) -> None:
    images = [photo(), b"not an image", photo(fmt="JPEG"), photo()[:200]]
    result = service.detect("digits", images, DetectionOptions(), call())

    (sent,) = server.calls
    (tensor,) = sent.inputs.values()
    assert tensor.shape == (2, 320, 320, 3)
    assert tensor.dtype == np.uint8
    first, unsupported, jpeg, corrupt = result.slots
    assert isinstance(first, Mapped)
    assert isinstance(jpeg, Mapped)
    assert isinstance(unsupported, Failed)
    assert isinstance(unsupported.error, imaging.UnsupportedImage)
    assert isinstance(corrupt, Failed)
    assert isinstance(corrupt.error, imaging.CorruptImage)
    assert len(jpeg.result.detections) == 1


def test_no_predict_when_no_image_decoded(service: Service, server: FakeModelServer) -> None:
    result = service.detect("digits", [b"", b"GIF89a"], DetectionOptions(), call())
    assert server.calls == []
    assert result.version is None
    assert all(isinstance(slot, Failed) for slot in result.slots)
    with pytest.raises(imaging.EmptyImage):
        service.detect("digits", [b""], DetectionOptions(), call()).single()


def test_only_the_registrys_outputs_are_asked_for(
    service: Service, server: FakeModelServer
) -> None:
    service.detect("digits", [photo()], DetectionOptions(), call())
    service.classify("digit-classes", [gray(0)], ClassifyOptions(), call())
    detect, classify = server.calls
    assert detect.output_filter == (
        "detection_boxes",
        "detection_classes",
        "detection_scores",
        "num_detections",
    )
    assert classify.output_filter == ("classes", "probabilities")


def test_timings_are_the_requests_own(core_settings: Settings) -> None:
    slow = FakeModelServer(delay_s=0.05)
    service = Service(core_settings, fake_pool(core_settings, slow))
    result = service.detect("digits", [photo(), photo()], DetectionOptions(), call())
    timings = result.timings
    assert timings.inference_s >= 0.05
    assert 0 < timings.decode_s < timings.inference_s
    assert timings.mapping_s > 0
    mapped = [slot.mapping_s for slot in result.slots if isinstance(slot, Mapped)]
    assert timings.mapping_s == pytest.approx(sum(mapped))


def test_the_transport_gets_what_is_left_of_the_deadline(
    service: Service, server: FakeModelServer
) -> None:
    service.detect("digits", [photo()], DetectionOptions(), call(timeout_s=0.8))
    (sent,) = server.calls
    assert 0 < sent.timeout_s <= 0.8


def test_classification_names_the_best_classes(service: Service) -> None:
    result = service.classify(
        "digit-classes", [gray(130), gray(0)], ClassifyOptions(top_k=2), call()
    )
    bright, dark = (
        slot.result.classifications for slot in result.slots if isinstance(slot, Mapped)
    )
    # 130 // 26 = 5: class 6, the digit "5"; black is class 1, "0"; line 0 names no class.
    assert [c.label for c in bright][:1] == ["5"]
    assert [c.label for c in dark][:1] == ["0"]
    assert len(bright) == 2
    assert bright[0].probability == pytest.approx(0.9)


def test_classification_only_among_the_labels_asked_for(service: Service) -> None:
    options = ClassifyOptions(top_k=3, labels=frozenset({"7", "8"}))
    slot = service.classify("digit-classes", [gray(130)], options, call()).single()
    assert sorted(c.label for c in slot.result.classifications) == ["7", "8"]


def test_a_bytes_model_gets_the_original_files(service: Service, server: FakeModelServer) -> None:
    files = [gray(130), gray(0)]
    result = service.classify("digit-classes-bytes", files, ClassifyOptions(), call())
    (sent,) = server.calls
    (tensor,) = sent.inputs.values()
    assert tensor.dtype == object
    assert list(tensor) == files
    assert all(isinstance(slot, Mapped) for slot in result.slots)


def test_a_file_the_model_cannot_decode_fails_alone(
    service: Service, server: FakeModelServer
) -> None:
    truncated = gray(0)[:60]  # the header passes the probe; the pixels are gone
    result = service.classify(
        "digit-classes-bytes", [gray(130), truncated], ClassifyOptions(), call()
    )
    good, bad = result.slots
    assert isinstance(good, Mapped)
    assert good.result.classifications[0].label == "5"
    assert isinstance(bad, Failed)
    assert isinstance(bad.error, exceptions.ModelRejectedImage)
    # The whole batch first, then each file alone to find the one the model refused.
    assert [len(next(iter(c.inputs.values()))) for c in server.calls] == [2, 1, 1]


def test_a_single_file_the_model_cannot_decode_is_a_bad_image(
    service: Service, server: FakeModelServer
) -> None:
    result = service.classify("digit-classes-bytes", [gray(0)[:60]], ClassifyOptions(), call())
    with pytest.raises(exceptions.ModelRejectedImage):
        result.single()
    assert len(server.calls) == 1  # nothing to narrow down: no second Predict


@pytest.mark.parametrize(
    ("code", "raised", "calls"),
    [
        (grpc.StatusCode.UNAVAILABLE, exceptions.BackendUnavailable, 3),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, exceptions.BackendOverloaded, 1),
        (grpc.StatusCode.DEADLINE_EXCEEDED, exceptions.BackendTimeout, 1),
        (grpc.StatusCode.INVALID_ARGUMENT, exceptions.BackendRejected, 1),
        (grpc.StatusCode.INTERNAL, exceptions.BackendError, 1),
    ],
)
def test_a_backend_failure_fails_the_request(
    service: Service,
    server: FakeModelServer,
    code: grpc.StatusCode,
    raised: type[Exception],
    calls: int,
) -> None:
    service.detect("digits", [photo()], DetectionOptions(), call())  # resolved and warm
    server.calls.clear()
    server.fail_next = [RpcFailure(code, "model server at 10.1.2.3 said no")]
    with pytest.raises(raised) as caught:
        service.detect("digits", [photo()], DetectionOptions(), call())
    assert "10.1.2.3" not in str(caught.value)
    assert len(server.calls) == calls  # UNAVAILABLE alone is retried (3 attempts)


def test_message_limits_are_sized_for_a_full_batch(
    service: Service, server: FakeModelServer
) -> None:
    service.detect("digits", [photo()], DetectionOptions(), call())
    assert server.message_limits is not None
    send, receive = server.message_limits
    assert send >= 16 * 320 * 320 * 3  # ADAPTER_MAX_BATCH_IMAGES images of the input
    assert receive >= 16 * 100 * 4 * 4  # and their boxes
