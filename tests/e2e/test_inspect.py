"""``tfs-adapter inspect``: signatures read over gRPC, printed as saved_model_cli prints them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adapter.modelserver.testing import ModelServer
from tests.e2e.backends import adapter_client

DEMO_MODELS = ["digit_detector", "digit_classifier", "digit_classifier_bytes"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapter.cli", "inspect", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


def _saved_model_cli(export_dir: Path, *args: str) -> str:
    cli = Path(sys.executable).with_name("saved_model_cli")
    result = subprocess.run(
        [str(cli), "show", "--dir", str(export_dir), *args],
        capture_output=True, text=True, timeout=120, check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    return result.stdout


@pytest.mark.parametrize("model", DEMO_MODELS)
def test_inspect_prints_what_saved_model_cli_prints(
    model: str, model_server: ModelServer, demo_models_dir: Path
) -> None:
    ours = _run(model, "--target", model_server.target)
    assert ours.returncode == 0, ours.stderr
    theirs = _saved_model_cli(demo_models_dir / model / "1", "--all")
    # saved_model_cli goes on with the graph's ops and concrete functions,
    # which live only in the SavedModel on disk, not in the served metadata.
    signature_part = theirs.split("The MetaGraph with tag set")[0].strip("\n")
    assert ours.stdout.strip("\n") == signature_part


def test_inspect_one_signature_and_a_registry_name(
    model_server: ModelServer, demo_models_dir: Path
) -> None:
    ours = _run("digits", "--signature_def", "serving_default",
                env={"ADAPTER_TFS_TARGET": model_server.target})  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    theirs = _saved_model_cli(
        demo_models_dir / "digit_detector" / "1", "--tag_set", "serve",
        "--signature_def", "serving_default",
    )  # fmt: skip
    assert ours.stdout.strip("\n") == theirs.strip("\n")


def test_inspect_explains_an_unknown_model_in_one_line(model_server: ModelServer) -> None:
    result = _run("resnet", "--target", model_server.target)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"tfs-adapter inspect: {model_server.target}: "
        "NOT_FOUND: Servable not found for request: Latest(resnet)"
    ]


# --- --registry: a registry file drafted from the live signature ------------------------------

FAMILIES = [
    "digit_detector_zoo",
    "digit_detector_masks",
    "digit_yolo",
    "digit_classifier_keras",
    "digit_classifier_bytes",
    "digit_detector",
]


@pytest.mark.parametrize("model", FAMILIES)
def test_a_drafted_registry_is_served_as_it_says(
    model: str, model_server: ModelServer, tmp_path: Path
) -> None:
    drafted = _run(model, "--registry", "--target", model_server.target)
    assert drafted.returncode == 0, drafted.stderr
    lines = drafted.stdout.splitlines()
    # Every field the adapter settled on says where it came from.
    fields = [line for line in lines[2:] if ":" in line and not line.strip().endswith(":")]
    assert all(" # " in line for line in fields if "serving:" not in line), fields
    assert any("TODO" in line for line in lines if "labels:" in line)
    # Pasted as it is (labels written), the service resolves it to what it printed.
    registry = yaml.safe_load(drafted.stdout)
    ((name, entry),) = registry["models"].items()
    assert name == model.replace("_", "-")
    # As many names as the TODO asks for (a YOLO head's width depends on it).
    asked = re.search(r"TODO: (\d+) class names", drafted.stdout)
    names = [f"class{i}" for i in range(int(asked[1]) if asked else 11)]
    (tmp_path / "labels.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(registry), encoding="utf-8")
    client = adapter_client(tmp_path, path.read_text(), model_server.target)
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    described = client.get(f"/v1/models/{name}").get_json()
    if "resize" in entry["input"]:
        assert described["input"]["resize"] == entry["input"]["resize"]
    if entry["task"] == "detection":
        assert described["output"]["format"] == entry["format"]


def test_a_drafted_registry_names_what_the_signature_cannot_say(
    model_server: ModelServer,
) -> None:
    drafted = _run("digit_detector_zoo", "--registry", "--task", "classification",
                   "--target", model_server.target)  # fmt: skip
    assert drafted.returncode == 1
    problems = [line for line in drafted.stdout.splitlines() if line.strip().startswith("# model")]
    (problem,) = problems
    assert "outputs.probabilities" in problem and "name one" in problem
