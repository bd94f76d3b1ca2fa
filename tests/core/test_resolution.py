"""Resolution: a registry entry checked against a live signature, completed into a ResolvedModel.

Registries are real YAML files read by :func:`load_registry`; signatures are
the SignatureDefs GetModelMetadata returns, built to mirror the demo models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter.config import DEMO_REGISTRY
from adapter.imaging import Limits
from adapter.registry import RegistryEntry, load_registry
from adapter.resolution import BytesInput, Misconfigured, ResolvedModel, TensorInput, TensorSpec
from adapter.resolution import resolve as resolve_with_limits
from adapter.serving.protos import tensor_pb2
from adapter.serving.servable import SignatureDefs
from tests.core.signatures import (
    ATTRIBUTES_CLASSIFIER,
    BYTES_CLASSIFIER,
    CLASSIFIER,
    CLASSIFIER_OUTPUTS,
    DETECTOR,
    DETECTOR_OUTPUTS,
    DT,
    KERAS_CLASSIFIER,
    MASKS_DETECTOR,
    YOLO_DETECTOR,
    ZOO_DETECTOR,
    Shape,
    signatures,
)


def classifier_with(input_dtype: tensor_pb2.DataType, shape: Shape) -> SignatureDefs:
    return signatures({"images": (input_dtype, shape)}, CLASSIFIER_OUTPUTS)


def entry(task: str, servable: str, **fields: Any) -> dict[str, Any]:
    """A registry entry; ``input`` defaults to empty (everything from the signature)."""
    return {"task": task, "serving": {"name": servable}, "input": {}, **fields}


def load(tmp_path: Path, name: str, model: dict[str, Any]) -> RegistryEntry:
    """Write a one-model registry and read it back through the real parser."""
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"models": {name: model}}), encoding="utf-8")
    return load_registry(path)[name]


def resolve(config: RegistryEntry, live: SignatureDefs) -> ResolvedModel | Misconfigured:
    return resolve_with_limits(config, live, Limits())


def resolved(config: RegistryEntry, live: SignatureDefs) -> ResolvedModel:
    """``config`` resolved against ``live``; fails the test with the problems if it is not."""
    model = resolve(config, live)
    assert isinstance(model, ResolvedModel), model.problems
    return model


def tensor_input(model: ResolvedModel) -> TensorInput:
    assert isinstance(model.input, TensorInput), model.input
    return model.input


def problems(config: RegistryEntry, live: SignatureDefs) -> tuple[str, ...]:
    """What ``/readyz`` would say about ``config`` against ``live``."""
    model = resolve(config, live)
    assert isinstance(model, Misconfigured), f"{config.name} resolved, but should not"
    return model.problems


# --- completed from the signature ------------------------------------------------------------


def test_a_classifier_left_to_the_signature_is_completed(tmp_path: Path) -> None:
    config = load(tmp_path, "digit-classes", entry("classification", "digit_classifier"))
    assert config.input.tensor is None and config.input.preprocessing is None

    model = resolved(config, CLASSIFIER)

    spec = tensor_input(model)
    assert spec.tensor == "images"
    assert spec.preprocessing.size == (32, 32)
    assert spec.preprocessing.dtype == "float32"
    assert spec.preprocessing.shape == (32, 32, 3)
    assert model.outputs == {"probabilities": "probabilities", "classes": "classes"}
    assert spec.spec == TensorSpec(DT.DT_FLOAT, (-1, 32, 32, 3))
    assert spec.spec.describe() == "float32 (-1, 32, 32, 3)"
    assert model.output_specs["probabilities"].shape == (-1, 11)
    # The entry as read is kept whole beside what was resolved.
    assert model.entry is config
    assert (model.name, model.entry.task) == ("digit-classes", "classification")


def test_a_detector_with_only_a_size_is_completed(tmp_path: Path) -> None:
    model = entry("detection", "digit_detector", input={"size": [320, 320], "resize": "letterbox"})
    detector = resolved(load(tmp_path, "digits", model), DETECTOR)

    spec = tensor_input(detector)
    assert spec.tensor == "input_tensor"
    assert (spec.preprocessing.dtype, spec.preprocessing.size) == ("uint8", (320, 320))
    assert spec.preprocessing.resize == "letterbox"
    assert detector.outputs == {
        "boxes": "detection_boxes",
        "classes": "detection_classes",
        "scores": "detection_scores",
        "count": "num_detections",
    }
    assert spec.spec == TensorSpec(DT.DT_UINT8, (-1, -1, -1, 3))


def test_the_preprocessor_is_compiled_with_the_services_limits(tmp_path: Path) -> None:
    config = load(tmp_path, "digit-classes", entry("classification", "digit_classifier"))
    limits = Limits(max_bytes=1000, max_width=64, max_height=64, max_pixels=4096)
    model = resolve_with_limits(config, CLASSIFIER, limits)
    assert isinstance(model, ResolvedModel)
    assert tensor_input(model).preprocessor.limits == limits


def test_an_optional_output_the_signature_lacks_is_left_out(tmp_path: Path) -> None:
    outputs = {key: value for key, value in DETECTOR_OUTPUTS.items() if key != "num_detections"}
    live = signatures({"input_tensor": (DT.DT_UINT8, (-1, -1, -1, 3))}, outputs)
    model = entry("detection", "digit_detector", input={"size": [320, 320]})
    detector = resolved(load(tmp_path, "digits", model), live)
    assert "count" not in detector.outputs
    assert "num_detections" not in detector.output_specs


def test_a_string_input_is_fed_the_original_bytes(tmp_path: Path) -> None:
    model = entry("classification", "digit_classifier_bytes")
    classifier = resolved(load(tmp_path, "digit-classes-bytes", model), BYTES_CLASSIFIER)
    assert classifier.input == BytesInput("image_bytes", TensorSpec(DT.DT_STRING, (-1,)))


def test_an_nchw_input_is_read_as_batch_channels_height_width(tmp_path: Path) -> None:
    live = classifier_with(DT.DT_FLOAT, (-1, 3, 24, 32))
    model = entry("classification", "digit_classifier", input={"layout": "nchw"})
    spec = tensor_input(resolved(load(tmp_path, "digit-classes", model), live))
    assert spec.preprocessing.size == (32, 24)  # (width, height)
    assert spec.preprocessing.shape == (3, 24, 32)


def test_a_gray_input_is_completed(tmp_path: Path) -> None:
    live = classifier_with(DT.DT_FLOAT, (-1, 28, 28, 1))
    model = entry("classification", "digit_classifier", input={"color": "gray"})
    spec = tensor_input(resolved(load(tmp_path, "digit-classes", model), live))
    assert spec.preprocessing.shape == (28, 28, 1)


def test_an_input_of_unknown_rank_takes_the_registrys_size(tmp_path: Path) -> None:
    live = classifier_with(DT.DT_FLOAT, None)
    model = entry("classification", "digit_classifier", input={"size": [64, 48]})
    spec = tensor_input(resolved(load(tmp_path, "digit-classes", model), live))
    assert spec.preprocessing.size == (64, 48)
    assert spec.spec == TensorSpec(DT.DT_FLOAT, None)


YOLO = YOLO_DETECTOR


def guessed(model: ResolvedModel) -> dict[str, object]:
    return {guess.field: guess.value for guess in model.guesses}


def test_a_detection_zoo_export_needs_only_task_and_servable(tmp_path: Path) -> None:
    model = resolved(load(tmp_path, "zoo", entry("detection", "zoo")), ZOO_DETECTOR)
    spec = tensor_input(model)
    assert model.format == "tf_od_api"
    # Any height and width: each image at its own size, one per Predict (the batch is fixed at 1).
    assert (spec.preprocessing.resize, spec.preprocessing.max_side) == ("fit", 1024)
    assert model.per_image
    # The heavy outputs are never asked for.
    assert set(model.outputs.values()) == {
        "detection_boxes", "detection_classes", "detection_scores", "num_detections"
    }  # fmt: skip
    assert guessed(model) == {"input.resize": "fit", "input.max_side": 1024}


def test_a_fixed_batch_of_one_with_a_fixed_size_goes_one_image_per_predict(tmp_path: Path) -> None:
    live = classifier_with(DT.DT_FLOAT, (1, 32, 32, 3))
    model = resolved(load(tmp_path, "pets", entry("classification", "digit_classifier")), live)
    assert model.per_image
    assert tensor_input(model).preprocessing.size == (32, 32)


def test_a_batched_signature_with_a_fixed_size_takes_whole_batches(tmp_path: Path) -> None:
    model = resolved(
        load(tmp_path, "pets", entry("classification", "digit_classifier")), CLASSIFIER
    )
    assert not model.per_image


def test_a_keras_export_uses_its_one_output_as_probabilities(tmp_path: Path) -> None:
    model = resolved(load(tmp_path, "keras", entry("classification", "keras")), KERAS_CLASSIFIER)
    assert tensor_input(model).tensor == "keras_tensor"
    assert model.outputs == {"probabilities": "output_0"}
    assert guessed(model)["outputs.probabilities"] == "output_0"
    assert guessed(model)["input.size"] == [32, 32]


def test_a_classifier_with_two_candidate_outputs_is_asked_to_name_one(tmp_path: Path) -> None:
    live = signatures(
        {"x": (DT.DT_FLOAT, (-1, 32, 32, 3))},
        {"logits": (DT.DT_FLOAT, (-1, 10)), "embedding": (DT.DT_FLOAT, (-1, 128))},
    )
    (problem,) = problems(load(tmp_path, "pets", entry("classification", "m")), live)
    assert problem.startswith("model pets: outputs.probabilities: "), problem
    assert "embedding, logits" in problem and "name one" in problem


def test_a_yolo_export_is_read_from_its_one_output(tmp_path: Path) -> None:
    model = resolved(load(tmp_path, "yolo", entry("detection", "yolo")), YOLO)
    spec = tensor_input(model)
    assert model.format == "yolo"
    assert model.outputs == {"predictions": "output_0"}
    assert model.per_image
    assert spec.preprocessing.size == (640, 640)
    assert spec.preprocessing.resize == "letterbox"
    assert spec.preprocessing.pad_value == 114
    assert spec.preprocessing.scale == 1 / 255
    head = model.head
    assert head is not None
    assert (head.layout, head.classes, head.objectness, head.normalized) == (
        "channels_first", 10, False, False
    )  # fmt: skip
    assert guessed(model)["format"] == "yolo"


@pytest.mark.parametrize(
    ("shape", "labels", "objectness", "want"),
    [
        ((1, 14, 8400), 10, None, ("channels_first", 10, False)),
        ((1, 8400, 14), 10, None, ("anchors_first", 10, False)),
        ((1, 8400, 14), None, None, ("anchors_first", 10, False)),
        ((1, 25200, 85), 80, None, ("anchors_first", 80, True)),
        ((1, 25200, 85), None, True, ("anchors_first", 80, True)),
        ((1, 84, 8400), 80, None, ("channels_first", 80, False)),
    ],
)
def test_a_yolo_heads_layout_is_read_from_its_shape_and_labels(
    tmp_path: Path,
    shape: tuple[int, ...],
    labels: int | None,
    objectness: bool | None,
    want: tuple[str, int, bool],
) -> None:
    live = signatures({"images": (DT.DT_FLOAT, (1, 640, 640, 3))}, {"out": (DT.DT_FLOAT, shape)})
    fields: dict[str, Any] = {"format": "yolo"}
    if labels is not None:
        labels_file = tmp_path / "labels.txt"
        labels_file.write_text("\n".join(f"class{i}" for i in range(labels)) + "\n")
        fields["labels"] = str(labels_file)
    if objectness is not None:
        fields["yolo_objectness"] = objectness
    model = resolved(load(tmp_path, "yolo", entry("detection", "yolo", **fields)), live)
    assert model.head is not None
    assert (model.head.layout, model.head.classes, model.head.objectness) == want


def test_a_yolo_head_that_fits_no_label_count_names_the_fix(tmp_path: Path) -> None:
    live = signatures(
        {"images": (DT.DT_FLOAT, (1, 640, 640, 3))}, {"out": (DT.DT_FLOAT, (1, 14, 8400))}
    )
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("\n".join(f"class{i}" for i in range(80)) + "\n")
    model = entry("detection", "yolo", format="yolo", labels=str(labels_file))
    (problem,) = problems(load(tmp_path, "yolo", model), live)
    assert problem.startswith("model yolo: outputs.predictions: "), problem
    assert "80 labels" in problem and "yolo_objectness" in problem


# --- given fields that agree -----------------------------------------------------------------


def test_a_fully_given_entry_that_agrees_is_used_as_given(tmp_path: Path) -> None:
    model = entry(
        "classification",
        "digit_classifier",
        input={"tensor": "images", "encoding": "tensor", "dtype": "float32", "size": [32, 32]},
        outputs={"classes": "classes", "probabilities": "probabilities"},
    )
    config = load(tmp_path, "digit-classes", model)
    assert config.input.preprocessing is not None  # nothing left to fill in
    classifier = resolved(config, CLASSIFIER)
    assert tensor_input(classifier).preprocessing == config.input.preprocessing
    assert classifier.outputs == config.outputs


def test_a_size_is_width_then_height(tmp_path: Path) -> None:
    live = classifier_with(DT.DT_FLOAT, (-1, 24, 32, 3))  # height 24, width 32
    model = entry("classification", "digit_classifier", input={"size": [32, 24]})
    spec = tensor_input(resolved(load(tmp_path, "digit-classes", model), live))
    assert spec.preprocessing.size == (32, 24)


def test_outputs_named_in_the_registry_are_used(tmp_path: Path) -> None:
    live = signatures(
        {"images": (DT.DT_FLOAT, (-1, 32, 32, 3))},
        {"logits_softmax": (DT.DT_FLOAT, (-1, 11)), "classes": (DT.DT_INT64, (-1,))},
    )
    model = entry("classification", "digit_classifier", outputs={"probabilities": "logits_softmax"})
    classifier = resolved(load(tmp_path, "digit-classes", model), live)
    assert classifier.outputs == {"probabilities": "logits_softmax", "classes": "classes"}


def test_the_demo_registry_agrees_with_the_demo_models() -> None:
    live = {
        "digit_detector": DETECTOR,
        "digit_classifier": CLASSIFIER,
        "digit_classifier_bytes": BYTES_CLASSIFIER,
        "digit_detector_zoo": ZOO_DETECTOR,
        "digit_detector_masks": MASKS_DETECTOR,
        "digit_yolo": YOLO_DETECTOR,
        "digit_classifier_keras": KERAS_CLASSIFIER,
        "digit_attributes": ATTRIBUTES_CLASSIFIER,
    }
    for config in load_registry(DEMO_REGISTRY).values():
        resolved(config, live[config.serving.name])


# --- disagreements: one problem each, naming model and field ----------------------------------

TWO_INPUTS = signatures(
    {"images": (DT.DT_FLOAT, (-1, 32, 32, 3)), "mask": (DT.DT_FLOAT, (-1, 32, 32, 1))},
    CLASSIFIER_OUTPUTS,
)
NO_PROBABILITIES = signatures(
    {"images": (DT.DT_FLOAT, (-1, 32, 32, 3))}, {"classes": (DT.DT_INT64, (-1,))}
)
NO_SCORES = signatures(
    {"input_tensor": (DT.DT_UINT8, (-1, -1, -1, 3))},
    {key: value for key, value in DETECTOR_OUTPUTS.items() if key != "detection_scores"},
)
CLASSIFICATION, DETECTION = "classification", "detection"

PROBLEMS = [
    pytest.param(
        CLASSIFICATION, {}, {}, TWO_INPUTS,
        "input.tensor", ["2 inputs", "images, mask", "name one"],
        id="several-inputs-none-named",
    ),
    pytest.param(
        CLASSIFICATION, {"tensor": "pixels"}, {}, CLASSIFIER,
        "input.tensor", ["'pixels' is not an input", "images"],
        id="named-input-missing",
    ),
    pytest.param(
        CLASSIFICATION, {}, {}, classifier_with(DT.DT_FLOAT, (-1, 32, 32)),
        "input.tensor", ["4 dimensions"],
        id="not-an-image-rank",
    ),
    pytest.param(
        CLASSIFICATION, {}, {}, classifier_with(DT.DT_INT32, (-1, 32, 32, 3)),
        "input.dtype", ["int32", "uint8 or float32"],
        id="live-dtype-int32",
    ),
    pytest.param(
        DETECTION, {"dtype": "float32", "size": [320, 320]}, {}, DETECTOR,
        "input.dtype", ["registry says float32", "uint8"],
        id="dtype-disagrees",
    ),
    pytest.param(
        CLASSIFICATION, {"size": [28, 28]}, {}, CLASSIFIER,
        "input.size", ["[28, 28]", "[32, 32]"],
        id="size-vs-static-shape",
    ),
    pytest.param(
        CLASSIFICATION, {"size": [24, 32]}, {}, classifier_with(DT.DT_FLOAT, (-1, 24, 32, 3)),
        "input.size", ["[24, 32]", "[32, 24]"],
        id="size-width-height-swapped",
    ),
    pytest.param(
        CLASSIFICATION, {}, {}, classifier_with(DT.DT_FLOAT, None),
        "input.size", ["unknown rank", "give input.size", "resize: fit"],
        id="unknown-rank-none-given",
    ),
    pytest.param(
        CLASSIFICATION, {}, {}, classifier_with(DT.DT_FLOAT, (-1, -1, 32, 3)),
        "input.size", ["fixes no size", "give input.size"],
        id="half-open-size-none-given",
    ),
    pytest.param(
        DETECTION, {"resize": "fit"}, {}, signatures(
            {"images": (DT.DT_FLOAT, (1, 640, 640, 3))}, {"out": (DT.DT_FLOAT, (1, 14, 8400))}
        ),
        "input.resize", ["fit sends each image at its own size", "[640, 640]"],
        id="fit-vs-fixed-size",
    ),
    pytest.param(
        CLASSIFICATION, {}, {}, classifier_with(DT.DT_FLOAT, (4, 32, 32, 3)),
        "input.tensor", ["fixed batch of 4"],
        id="fixed-batch-of-4",
    ),
    pytest.param(
        CLASSIFICATION, {"color": "gray"}, {}, CLASSIFIER,
        "input.color", ["3 channels", "gray"],
        id="gray-vs-3-channels",
    ),
    pytest.param(
        CLASSIFICATION, {"encoding": "bytes"}, {}, CLASSIFIER,
        "input.encoding", ["registry says bytes", "float32"],
        id="bytes-vs-float-input",
    ),
    pytest.param(
        CLASSIFICATION, {"encoding": "tensor"}, {}, BYTES_CLASSIFIER,
        "input.encoding", ["registry says tensor", "string"],
        id="tensor-vs-string-input",
    ),
    pytest.param(
        CLASSIFICATION, {}, {}, NO_PROBABILITIES,
        "outputs.probabilities", ["no output named 'probabilities'", "classes"],
        id="required-output-missing",
    ),
    pytest.param(
        CLASSIFICATION, {}, {"probabilities": "probs"}, CLASSIFIER,
        "outputs.probabilities", ["'probs' is not an output", "classes, probabilities"],
        id="output-misnamed",
    ),
    pytest.param(
        CLASSIFICATION, {}, {"classes": "labels"}, CLASSIFIER,
        "outputs.classes", ["'labels' is not an output"],
        id="optional-output-misnamed",
    ),
    pytest.param(
        DETECTION, {"size": [320, 320]}, {}, NO_SCORES,
        "outputs.scores", ["'detection_scores'"],
        id="detector-scores-missing",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("task", "input_fields", "outputs", "live", "field", "fragments"), PROBLEMS
)
def test_each_disagreement_is_one_problem_naming_model_and_field(
    tmp_path: Path,
    task: str,
    input_fields: dict[str, Any],
    outputs: dict[str, str],
    live: SignatureDefs,
    field: str,
    fragments: list[str],
) -> None:
    model = entry(task, "servable", input=input_fields, outputs=outputs)
    config = load(tmp_path, "pets", model)

    found = problems(config, live)

    assert len(found) == 1, found
    (problem,) = found
    assert problem.startswith(f"model pets: {field}: "), problem
    for fragment in fragments:
        assert fragment in problem, (fragment, problem)


def test_a_missing_signature_lists_the_public_ones(tmp_path: Path) -> None:
    model = entry("classification", "digit_classifier")
    model["serving"]["signature"] = "predict"
    config = load(tmp_path, "pets", model)
    live = {**CLASSIFIER, **signatures({"x": (DT.DT_FLOAT, (-1,))}, {}, name="embed")}

    assert problems(config, live) == (
        "model pets: serving.signature: the model has no signature 'predict' "
        "(it has: embed, serving_default)",
    )


def test_a_model_with_only_the_init_op_has_no_signatures(tmp_path: Path) -> None:
    config = load(tmp_path, "pets", entry("classification", "digit_classifier"))
    live = {"__saved_model_init_op": CLASSIFIER["__saved_model_init_op"]}
    (problem,) = problems(config, live)
    assert problem.startswith("model pets: serving.signature: ")
    assert "(it has: none)" in problem


def test_normalization_for_a_uint8_input_is_a_problem_naming_the_model(tmp_path: Path) -> None:
    model = entry(
        "detection",
        "digit_detector",
        input={"size": [320, 320], "mean": [127.5], "std": [127.5]},
    )
    config = load(tmp_path, "digits", model)  # fine until the signature says uint8

    (problem,) = problems(config, DETECTOR)
    assert problem.startswith("model digits: input: "), problem
    assert "float32" in problem


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    model = entry("detection", "digit_detector", input={"dtype": "float32"})
    live = signatures({"input_tensor": (DT.DT_UINT8, (-1, -1, -1, 3))}, {})
    found = problems(load(tmp_path, "digits", model), live)
    fields = sorted(problem.split(": ")[1] for problem in found)
    assert fields == ["input.dtype", "outputs.boxes", "outputs.classes", "outputs.scores"]
    assert all(problem.startswith("model digits: ") for problem in found)


def test_a_numeric_dtype_for_a_string_input_is_a_problem(tmp_path: Path) -> None:
    model = entry("classification", "digit_classifier_bytes", input={"dtype": "uint8"})
    found = problems(load(tmp_path, "pets", model), BYTES_CLASSIFIER)
    assert len(found) == 1, found
    assert found[0].startswith(("model pets: input.dtype: ", "model pets: input.encoding: "))
