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
    assert set(settings.models) == {
        "digits",
        "digits-stretch",
        "digit-classes",
        "digit-classes-bytes",
    }
    assert settings.models["digits"].input.size == (320, 320)


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
        (("{tensor: image_bytes, encoding: bytes}", "{tensor: x}"), "size"),
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
