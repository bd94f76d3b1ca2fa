"""Configuration: environment variables and the registry, validated at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.config import DEMO_REGISTRY, ConfigError, load_registry, load_settings

VALID = """
models:
  pets:
    task: classification
    serving: {name: resnet, version: 3}
    input: {tensor: image_bytes, encoding: bytes}
    outputs: {probabilities: probabilities}
    labels: pets.txt
    background_class: 0
    deadline_ms: 250
"""


def _registry(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    (tmp_path / "pets.txt").write_text("background\ncat\ndog\n")
    return path


def test_defaults_serve_the_demo() -> None:
    settings = load_settings({})
    assert settings.registry_path == DEMO_REGISTRY
    assert settings.tfs_target == "localhost:8500"
    assert list(settings.models) == [
        "digits", "digits-stretch", "digit-classes", "digit-classes-bytes",
        "digits-zoo", "digits-masks", "digits-yolo", "digit-classes-keras", "digit-attributes",
    ]  # fmt: skip
    prep = settings.models["digits"].input.preprocessing
    assert prep is not None
    assert (prep.size, prep.resize, prep.pad_value) == ((320, 320), "letterbox", 255)
    assert settings.models["digit-classes-bytes"].input.preprocessing is None


IMAGENET = """
models:
  resnet:
    task: classification
    serving: {name: resnet}
    input:
      tensor: input_1
      size: [224, 224]
      resize: resize_shorter_crop
      filter: area
      layout: nchw
      color: bgr
      dtype: float32
      mean: [103.53, 116.28, 123.675]
      std: [57.375, 57.12, 58.395]
    outputs: {probabilities: probs}
"""


def test_registry_input_becomes_preprocessing(tmp_path: Path) -> None:
    models = load_registry(_registry(tmp_path, IMAGENET))
    prep = models["resnet"].input.preprocessing
    assert prep is not None
    assert prep.shape == (3, 224, 224)
    assert (prep.resize, prep.shorter_side, prep.filter) == ("resize_shorter_crop", None, "area")
    assert prep.mean == (103.53, 116.28, 123.675)
    assert (prep.color, prep.dtype) == ("bgr", "float32")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("resize: resize_shorter_crop", "resize: fit"), "resize"),
        (("filter: area", "filter: cubic"), "filter"),
        (("dtype: float32", "dtype: uint8"), "needs dtype='float32'"),
        (("      std: [57.375, 57.12, 58.395]\n", ""), "mean and std go together"),
        (("mean: [103.53, 116.28, 123.675]", "mean: [1, 2]"), "mean must be"),
        (("layout: nchw", "layout: nchw\n      shorter_side: 200"), "shorter_side"),
    ],
)
def test_invalid_inputs_name_the_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_registry(_registry(tmp_path, IMAGENET.replace(*change)))


def test_environment_overrides(tmp_path: Path) -> None:
    settings = load_settings(
        {"ADAPTER_MODELS": str(_registry(tmp_path, VALID)), "ADAPTER_TFS_TARGET": "dns:///tfs:8500"}
    )
    pets = settings.models["pets"]
    assert settings.tfs_target == "dns:///tfs:8500"
    assert pets.serving.version == 3 and pets.deadline_s == 0.25
    assert pets.labels.name(2) == "dog"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("task: classification", "task: segmentation"), "task"),
        (("deadline_ms: 250", "deadline_ms: 250\n    colour: red"), "colour"),
        (("{probabilities: probabilities}", "{scores: x}"), "outputs"),
        (("{name: resnet, version: 3}", "{name: resnet, version: 3, version_label: a}"), "version"),
        (("{tensor: image_bytes, encoding: bytes}", "{tensor: x, dtype: int32}"), "dtype"),
        (("labels: pets.txt", "labels: missing.txt"), "missing.txt"),
    ],
)
def test_invalid_registries_name_the_problem(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = _registry(tmp_path, VALID.replace(*change))
    with pytest.raises(ConfigError, match=message):
        load_registry(path)


def test_bad_environment_values_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="ADAPTER_DEADLINE_MS"):
        load_settings({"ADAPTER_DEADLINE_MS": "soon"})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({"ADAPTER_MODELS": "/nonexistent/models.yaml"})


def test_admission_follows_the_threads_and_the_deadline() -> None:
    settings = load_settings({})
    assert (settings.max_in_flight, settings.admission_queue) == (4, 4)
    assert settings.admission_wait_s == pytest.approx(0.5)  # a tenth of the 5 s deadline
    settings = load_settings(
        {"ADAPTER_THREADS": "6", "ADAPTER_DEADLINE_MS": "2000", "ADAPTER_ADMISSION_QUEUE": "0"}
    )
    assert (settings.max_in_flight, settings.admission_queue) == (6, 0)
    assert settings.admission_wait_s == pytest.approx(0.2)
    settings = load_settings({"ADAPTER_ADMISSION_WAIT_MS": "30"})
    assert settings.admission_wait_s == pytest.approx(0.03)
    with pytest.raises(ConfigError, match="ADAPTER_ADMISSION_QUEUE"):
        load_settings({"ADAPTER_ADMISSION_QUEUE": "-1"})


@pytest.mark.parametrize(
    ("environ", "exporters", "protocol"),
    [
        ({}, (), "grpc"),  # off unless asked for
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, ("otlp",), "grpc"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp",), "grpc"),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, ("console", "otlp"), "grpc"),
        ({"OTEL_TRACES_EXPORTER": "none"}, ("none",), "grpc"),  # recorded, not exported
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, (), "grpc"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            ("otlp",),
            "http/protobuf",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            },
            (),
            "grpc",
        ),
    ],
)
def test_traces_follow_the_standard_otel_variables(
    environ: dict[str, str], exporters: tuple[str, ...], protocol: str
) -> None:
    settings = load_settings(environ)
    assert (settings.trace_exporters, settings.otlp_protocol) == (exporters, protocol)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
    ],
)
def test_trace_settings_this_service_cannot_honour_are_refused(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ)


def test_the_retry_budget_is_a_percentage_of_calls() -> None:
    assert load_settings({}).backend_policy.retry_budget_ratio == 0.1
    given = load_settings({"ADAPTER_RETRY_BUDGET_PERCENT": "25"})
    assert given.backend_policy.retry_budget_ratio == 0.25


def test_cors_is_off_and_the_demo_page_on_by_default() -> None:
    settings = load_settings({})
    assert settings.cors_origins == ()
    assert settings.demo_page is True


def test_cors_origins_are_exact_lowercased_and_deduplicated() -> None:
    env = {
        "ADAPTER_CORS_ORIGINS": "https://App.example.com, http://localhost:5173,"
        "https://app.example.com,capacitor://localhost,http://[::1]:8080",
        "ADAPTER_CORS_MAX_AGE_S": "120",
        "ADAPTER_DEMO_PAGE": "false",
    }
    settings = load_settings(env)
    assert settings.cors_origins == (
        "https://app.example.com",
        "http://localhost:5173",
        "capacitor://localhost",
        "http://[::1]:8080",
    )
    assert settings.cors_max_age_s == 120
    assert settings.demo_page is False
    assert load_settings({"ADAPTER_CORS_ORIGINS": " * "}).cors_origins == ("*",)


@pytest.mark.parametrize(
    "origins",
    [
        "https://app.example.com/",  # a path
        "https://app.example.com/app",
        "app.example.com",  # no scheme
        "https://*.example.com",  # a pattern: never one here
        "https://app.example.com, *",
        "null",
    ],
)
def test_what_is_not_an_origin_stops_the_start(origins: str) -> None:
    with pytest.raises(ConfigError, match=r"ADAPTER_CORS_ORIGINS: .* is not an origin"):
        load_settings({"ADAPTER_CORS_ORIGINS": origins})


def test_any_origin_is_refused_with_api_keys_on() -> None:
    env = {"ADAPTER_CORS_ORIGINS": "*", "ADAPTER_API_KEYS": "k3y-0ne-3a7f9c1d2e4b6a80"}
    with pytest.raises(ConfigError, match=r"ADAPTER_CORS_ORIGINS=\* .* list the origins"):
        load_settings(env)


def test_the_demo_page_switch_is_a_boolean() -> None:
    with pytest.raises(ConfigError, match="ADAPTER_DEMO_PAGE must be true or false"):
        load_settings({"ADAPTER_DEMO_PAGE": "maybe"})
