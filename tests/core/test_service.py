"""The Service facade: models, readiness and the errors a caller gets, over the fake server."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from adapter import exceptions
from adapter.config import Settings
from adapter.mapping.detection import DetectionOptions
from adapter.pipeline import Call, ClassifyOptions
from adapter.service import Service
from adapter.serving.resilience import Deadline
from adapter.serving.servable import RpcFailure, VersionStatus
from tests.core.fakes import FakeModel, FakeModelServer, classify_brightness, demo_models, fake_pool
from tests.core.signatures import CLASSIFIER_OUTPUTS, DETECTOR_OUTPUTS, DT, signatures
from tests.helpers import encode

ALL = [
    "digit-attributes",
    "digit-classes",
    "digit-classes-bytes",
    "digit-classes-keras",
    "digits",
    "digits-masks",
    "digits-stretch",
    "digits-yolo",
    "digits-zoo",
]


def call(version: str | None = None) -> Call:
    return Call(Deadline(5.0), version)


def serving(core_settings: Settings, models: dict[str, FakeModel]) -> Service:
    return Service(core_settings, fake_pool(core_settings, FakeModelServer(models)))


def test_ready_when_every_model_is_available_and_matches(service: Service) -> None:
    readiness = service.readiness()
    assert readiness.not_ready == []
    assert sorted(readiness.models) == ALL
    state = readiness.models["digits"]
    assert (state.ready, state.state, state.version, state.circuit) == (
        True,
        "AVAILABLE",
        1,
        "closed",
    )


def test_models_sharing_a_servable_ask_for_its_status_once(
    service: Service, server: FakeModelServer
) -> None:
    service.readiness()
    assert server.status_calls == 8  # nine models, eight servables
    assert server.signature_calls == 9  # each model resolved once...
    service.readiness()
    service.detect("digits", [_png()], DetectionOptions(), call())
    assert server.signature_calls == 9  # ...per worker


def test_a_missing_servable_is_not_found(core_settings: Settings) -> None:
    models = demo_models()
    del models["digit_classifier_bytes"]
    readiness = serving(core_settings, models).readiness()
    assert readiness.not_ready == ["digit-classes-bytes"]
    assert readiness.models["digit-classes-bytes"].state == "NOT_FOUND"


def test_a_loading_servable_is_not_ready(core_settings: Settings) -> None:
    models = demo_models()
    models["digit_detector"].versions = [VersionStatus(2, "LOADING")]
    readiness = serving(core_settings, models).readiness()
    assert readiness.not_ready == ["digits", "digits-stretch"]
    assert readiness.models["digits"].state == "LOADING"


def test_a_signature_that_disagrees_names_the_registry_field(core_settings: Settings) -> None:
    models = demo_models()
    outputs = {k: v for k, v in DETECTOR_OUTPUTS.items() if k != "detection_scores"}
    inputs = {"input_tensor": (DT.DT_UINT8, (-1, -1, -1, 3))}
    models["digit_detector"].signatures = signatures(inputs, outputs)
    service = serving(core_settings, models)

    state = service.readiness().models["digits"]
    assert (state.ready, state.state) == (False, "MISCONFIGURED")
    assert any("outputs.scores" in problem for problem in state.problems)
    with pytest.raises(exceptions.ModelNotReady):
        service.detect("digits", [_png()], DetectionOptions(), call())


def test_an_unreachable_server_is_unreachable(core_settings: Settings) -> None:
    server = FakeModelServer()
    service = Service(core_settings, fake_pool(core_settings, server))
    down = RpcFailure(grpc.StatusCode.UNAVAILABLE, "connection refused")

    def refuse(*args: object, **kwargs: object) -> list[VersionStatus]:
        raise down

    server.model_status = refuse  # type: ignore[method-assign]
    readiness = service.readiness()
    assert readiness.not_ready == ALL
    assert {state.state for state in readiness.models.values()} == {"UNREACHABLE"}


def test_models_describe_the_input_the_signature_resolved(service: Service) -> None:
    before = {model.entry.name: model for model in service.models()}
    assert list(before)[:4] == ["digits", "digits-stretch", "digit-classes", "digit-classes-bytes"]
    assert sorted(before) == ALL
    digits = before["digits"].input
    assert (digits.encoding, digits.dtype, digits.size, digits.resize) == (
        "tensor",
        "uint8",
        (320, 320),
        "letterbox",
    )
    assert before["digit-classes-bytes"].input.encoding == "bytes"
    assert all(model.state.ready for model in before.values())
    assert service.model("digit-classes").input.size == (32, 32)
    zoo = before["digits-zoo"].input
    assert (zoo.size, zoo.resize, zoo.max_side) == (None, "fit", 1024)
    assert before["digits-yolo"].output_format == "yolo"


def test_an_unknown_model_or_the_wrong_task(service: Service) -> None:
    with pytest.raises(exceptions.UnknownModel):
        service.detect("nope", [_png()], DetectionOptions(), call())
    with pytest.raises(exceptions.UnknownModel):
        service.model("nope")
    with pytest.raises(exceptions.WrongTask):
        service.detect("digit-classes", [_png()], DetectionOptions(), call())
    with pytest.raises(exceptions.WrongTask):
        service.classify("digits", [_png()], ClassifyOptions(), call())


def test_a_label_the_model_lacks_is_an_invalid_option(service: Service) -> None:
    with pytest.raises(exceptions.InvalidOption) as caught:
        service.detect("digits", [_png()], DetectionOptions(labels=frozenset({"cat"})), call())
    assert caught.value.field == "labels"


def test_a_version_the_registry_does_not_allow_is_an_invalid_option(service: Service) -> None:
    with pytest.raises(exceptions.InvalidOption) as caught:
        service.detect("digits", [_png()], DetectionOptions(), call(version="7"))
    assert caught.value.field == "version"


def test_a_second_classifier_signature_works_beside_the_first(core_settings: Settings) -> None:
    models = demo_models()
    models["digit_classifier"] = FakeModel(
        signatures({"images": (DT.DT_FLOAT, (-1, 32, 32, 3))}, CLASSIFIER_OUTPUTS),
        classify_brightness,
        [VersionStatus(1, "AVAILABLE"), VersionStatus(4, "AVAILABLE")],
    )
    service = serving(core_settings, models)
    assert service.readiness().models["digit-classes"].version == 4
    result = service.classify("digit-classes", [_png()], ClassifyOptions(), call())
    assert result.version == 4


def _png() -> bytes:
    return encode(np.full((50, 60, 3), 255, np.uint8), "PNG")
