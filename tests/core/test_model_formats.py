"""The model families users bring, through the Service over the in-process fake server.

Detection Zoo exports (a batch of 1, any size, heavy outputs), Mask R-CNN
masks, YOLO heads and Keras logits: the fake models box or classify what
they are really sent, so a box on the drawn rectangle in original pixels
proves the per-image Predicts, ``fit``, the YOLO letterbox, decode and NMS,
and the mapping back all agree. ``tests/e2e/test_model_families.py`` runs
the real demo models.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from adapter import imaging
from adapter.config import Settings, load_settings
from adapter.mapping.detection import DetectionOptions
from adapter.pipeline import ClassifyOptions
from adapter.results import Failed, Mapped
from adapter.service import Service
from tests.core.fakes import FakeModelServer, fake_pool
from tests.core.test_pipeline import RECT, call, gray, photo
from tests.helpers import encode

HEAVY = {
    "detection_multiclass_scores",
    "detection_anchor_indices",
    "detection_features",
    "raw_detection_boxes",
    "raw_detection_scores",
}


def box_of(slot: Mapped) -> tuple[float, float, float, float]:  # type: ignore[type-arg]
    (found,) = slot.result.detections
    return found.box.x_min, found.box.y_min, found.box.x_max, found.box.y_max


def rectangle_at(width: int, height: int, rect: tuple[int, int, int, int]) -> bytes:
    pixels = np.full((height, width, 3), 255, np.uint8)
    x0, y0, x1, y1 = rect
    pixels[y0:y1, x0:x1] = 0
    return encode(pixels, "PNG")


def test_a_zoo_batch_goes_one_image_per_predict_at_its_own_size(
    service: Service, server: FakeModelServer
) -> None:
    big = rectangle_at(2048, 1000, (400, 200, 800, 600))
    images = [photo(), big, photo(640, 480)]
    result = service.detect("digits-zoo", images, DetectionOptions(), call())

    shapes = sorted(next(iter(sent.inputs.values())).shape for sent in server.calls)
    # Each image at its own size, the longest side at most 1024, never enlarged.
    assert shapes == sorted([(1, 300, 400, 3), (1, 500, 1024, 3), (1, 480, 640, 3)])
    first, second, third = result.slots
    assert isinstance(first, Mapped) and isinstance(second, Mapped) and isinstance(third, Mapped)
    assert box_of(first) == pytest.approx(RECT, abs=0.01)
    assert box_of(second) == pytest.approx((400, 200, 800, 600), abs=2.01)  # 1 px of 1024 is 2
    assert box_of(third) == pytest.approx(RECT, abs=0.01)
    assert (second.result.image.width, second.result.image.height) == (2048, 1000)


def test_the_heavy_outputs_are_never_asked_for(service: Service, server: FakeModelServer) -> None:
    service.detect("digits-zoo", [photo()], DetectionOptions(), call())
    (sent,) = server.calls
    assert set(sent.output_filter) == {
        "detection_boxes", "detection_classes", "detection_scores", "num_detections",
    }  # fmt: skip


def test_a_bad_image_in_a_per_image_batch_fails_alone_in_order(
    service: Service, server: FakeModelServer
) -> None:
    result = service.detect(
        "digits-zoo", [b"not an image", photo(), photo()[:100]], DetectionOptions(), call()
    )
    unsupported, good, corrupt = result.slots
    assert isinstance(unsupported, Failed) and isinstance(
        unsupported.error, imaging.UnsupportedImage
    )
    assert isinstance(good, Mapped) and box_of(good) == pytest.approx(RECT, abs=0.01)
    assert isinstance(corrupt, Failed) and isinstance(corrupt.error, imaging.CorruptImage)
    assert len(server.calls) == 1


def per_image_service(settings: Settings, server: FakeModelServer) -> Service:
    return Service(settings, fake_pool(settings, server))


def test_per_image_predicts_run_concurrently(core_settings: Settings) -> None:
    slow = FakeModelServer(delay_s=0.1)
    service = per_image_service(core_settings, slow)
    result = service.detect("digits-zoo", [photo()] * 6, DetectionOptions(), call())
    assert all(isinstance(slot, Mapped) for slot in result.slots)
    assert slow.most_in_flight > 1
    # The batch is one request: it reports the inference time once, not six times.
    assert result.timings.inference_s < 6 * 0.1


def test_per_image_concurrency_is_bounded_by_the_setting() -> None:
    settings = load_settings({"ADAPTER_PREDICT_CONCURRENCY": "2"})
    slow = FakeModelServer(delay_s=0.05)
    service = per_image_service(settings, slow)
    result = service.detect("digits-zoo", [photo()] * 6, DetectionOptions(), call())
    assert len(result.slots) == 6
    assert slow.most_in_flight == 2


def test_each_per_image_predict_gets_what_is_left_of_the_deadline(
    service: Service, server: FakeModelServer
) -> None:
    service.detect("digits-zoo", [photo(), photo()], DetectionOptions(), call(timeout_s=0.7))
    assert len(server.calls) == 2
    assert all(0 < sent.timeout_s <= 0.7 for sent in server.calls)


def test_a_yolo_head_is_decoded_deduplicated_and_mapped_back(
    service: Service, server: FakeModelServer
) -> None:
    slot = service.detect("digits-yolo", [photo()], DetectionOptions(), call()).single()
    (sent,) = server.calls
    (tensor,) = sent.inputs.values()
    assert (tensor.shape, tensor.dtype) == ((1, 640, 640, 3), np.float32)
    # Letterboxed with ultralytics' grey 114, scaled to 0..1.
    assert tensor[0, 0, 0] == pytest.approx([114 / 255] * 3)
    assert tensor.min() >= 0 and tensor.max() <= 1
    # Three overlapping candidates in, one detection out, of 0-based class 3.
    (found,) = slot.result.detections
    assert (found.label, found.class_id, found.score) == ("3", 3, pytest.approx(0.9))
    # One input pixel is 0.625 original pixels; the copies shifted at most 2.
    assert box_of(slot) == pytest.approx(RECT, abs=1.0)


def test_masks_are_mapped_only_when_asked_for(service: Service, server: FakeModelServer) -> None:
    plain = service.detect("digits-masks", [photo()], DetectionOptions(), call()).single()
    asked = service.detect("digits-masks", [photo()], DetectionOptions(masks=True), call()).single()
    without, with_masks = server.calls
    assert "detection_masks" not in without.output_filter
    assert "detection_masks" in with_masks.output_filter
    assert plain.result.detections[0].mask is None
    mask = asked.result.detections[0].mask
    assert mask is not None and mask.size == (300, 400)
    # The fake's mask fills its box: the mask is the rectangle, in original pixels.
    expected = np.zeros((300, 400), bool)
    x0, y0, x1, y1 = RECT
    expected[y0:y1, x0:x1] = True
    assert np.array_equal(mask.decode(), expected)


def test_keras_logits_with_softmax_are_probabilities(service: Service) -> None:
    slot = service.classify(
        "digit-classes-keras", [gray(130)], ClassifyOptions(top_k=10), call()
    ).single()
    found = slot.result.classifications
    assert found[0].label == "5"
    assert sum(c.probability for c in found) == pytest.approx(1, abs=1e-4)
    assert all(0 <= c.probability <= 1 for c in found)


def test_logits_read_as_probabilities_are_flagged_and_never_negative() -> None:
    settings = load_settings({})
    entry = replace(settings.models["digit-classes-keras"], activation="none")
    models = {**settings.models, "digit-classes-keras": entry}
    service = per_image_service(replace(settings, models=models), FakeModelServer())
    assert service.model("digit-classes-keras").hints == ()

    slot = service.classify("digit-classes-keras", [gray(130)], ClassifyOptions(), call()).single()
    assert all(0 <= c.probability <= 1 for c in slot.result.classifications)
    (hint,) = service.model("digit-classes-keras").hints
    assert hint.startswith("activation: ") and "softmax" in hint
    # Flagged once, however many requests see it.
    service.classify("digit-classes-keras", [gray(0)], ClassifyOptions(), call())
    assert len(service.model("digit-classes-keras").hints) == 1


def test_a_multi_label_model_returns_every_class_above_min_score(service: Service) -> None:
    # The fake's attribute logits are all 0: every class is exactly 0.5 probable.
    slot = service.classify("digit-attributes", [gray(0)], ClassifyOptions(), call()).single()
    assert len(slot.result.classifications) == 13  # at or above the default 0.5, all of them
    slot = service.classify(
        "digit-attributes", [gray(0)], ClassifyOptions(min_score=0.6), call()
    ).single()
    assert slot.result.classifications == []
