"""Model servers and adapters wired together for one test: registries, configs, clients.

Each test that breaks a backend gets its own model server process, serving
only the demo models it names, so stopping or freezing it affects no other test.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from flask.testing import FlaskClient

from adapter.app import create_app
from adapter.config import load_settings
from adapter.modelserver.testing import ModelServer, start_model_server
from tests.contract import ContractClient
from tests.helpers import upload

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "adapter" / "demo" / "samples"
LABELS = ROOT / "adapter" / "demo" / "labels" / "digits.txt"
SEVEN = (SAMPLES / "seven.png").read_bytes()

# A classifier whose registry entry leaves everything to the signature.
CLASSIFIER = f"""
models:
  seven:
    task: classification
    serving: {{name: digit_classifier}}
    input: {{}}
    labels: {LABELS}
    background_class: 0
"""


def model_config(path: Path, models: Mapping[str, Path], labels: str = "") -> Path:
    """Write a TF Serving model_config_file serving ``models`` (name -> base path)."""
    entries = "\n".join(
        f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" '
        f"model_version_policy {{ all {{}} }} {labels} }}"
        for name, base in models.items()
    )
    path.write_text(f"model_config_list {{\n{entries}\n}}\n", encoding="utf-8")
    return path


def copy_model(demo_models_dir: Path, name: str, base: Path, versions: Sequence[int]) -> Path:
    """Copy demo model ``name`` (version 1) under ``base`` as each of ``versions``."""
    for version in versions:
        shutil.copytree(demo_models_dir / name / "1", base / str(version))
    return base


def serve(config_file: Path, *, port: int | None = None, extra: Sequence[str] = ()) -> ModelServer:
    """Start a model server for ``config_file`` (on ``port`` if given), polling every 0.2 s."""
    args = ["--model_config_file", str(config_file), "--file_system_poll_wait_seconds", "0.2"]
    if port is not None:
        args += ["--port", str(port)]
    return start_model_server([*args, *extra], timeout=120)


def adapter_client(
    tmp_path: Path, registry: str, target: str, env: Mapping[str, str] | None = None
) -> FlaskClient:
    """An in-process adapter with ``registry`` (YAML text) calling ``target``."""
    path = tmp_path / "registry.yaml"
    path.write_text(registry, encoding="utf-8")
    settings = load_settings(
        {"ADAPTER_MODELS": str(path), "ADAPTER_TFS_TARGET": target, **(env or {})}
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    app.test_client_class = ContractClient
    return app.test_client()


def classify_seven(  # type: ignore[no-untyped-def]
    client: FlaskClient,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    *,
    contract: bool = True,
):
    """POST the sample seven to ``/v1/models/seven/classify``; the response.

    ``contract=False`` skips the openapi.yaml check, for models made to answer oddly.
    """
    return client.post(
        f"/v1/models/seven/classify{query}",
        data=upload(SEVEN),
        headers=dict(headers or {}),
        contract=contract,
    )
