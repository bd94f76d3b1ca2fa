"""``tfs-adapter inspect``: signatures read over gRPC, printed as saved_model_cli prints them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapter.modelserver.testing import ModelServer

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
