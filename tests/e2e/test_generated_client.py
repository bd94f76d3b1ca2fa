"""A client generated from openapi.yaml (openapi-python-client) calls the live service."""

from __future__ import annotations

import base64
import importlib
import io
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from adapter.config import load_settings
from tests.contract import SPEC_FILE, check
from tests.helpers import unmatched_digits

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "adapter" / "demo" / "samples"
PACKAGE = "tfs_adapter_client"
# No post hooks (they run ruff from PATH): the generated code is imported, not kept.
CONFIG = "post_hooks: []\n"
# What the generator can't express, and says so: one binary body per operation (the
# raw image/* bodies; multipart and JSON cover the same inputs) and YAML answers.
EXPECTED_WARNINGS = ("Unsupported content type image/", "Unsupported content_type application/yaml")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Generate the client package into a temporary directory; its generator output."""
    out = tmp_path_factory.mktemp("client")
    config = out / "config.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    generator = Path(sys.executable).with_name("openapi-python-client")
    command = [str(generator), "generate", "--path", str(SPEC_FILE), "--meta", "none"]
    command += ["--output-path", str(out / PACKAGE), "--config", str(config)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield done.stdout + done.stderr
    finally:
        sys.path.remove(str(out))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def _check_response(response: httpx.Response) -> None:
    """Hold the generated client's answers to the contract too."""
    response.read()
    request = response.request
    check(
        request.method, str(request.url), response.status_code, response.headers, response.content
    )


@pytest.fixture()
def client(generated: str, live_url: str) -> Any:
    """The generated ``Client`` for the live service; every answer checked by the contract."""
    hooks = {"response": [_check_response]}
    return _module("client").Client(base_url=live_url, httpx_args={"event_hooks": hooks})


def test_the_generator_warns_only_about_what_it_cannot_express(generated: str) -> None:
    blocks = generated.split("WARNING parsing ")[1:]
    assert blocks, "expected the raw image bodies to be reported as unsupported"
    for block in blocks:
        reason = block.split("\n\n")[1]
        assert any(expected in reason for expected in EXPECTED_WARNINGS), block[:500]


def test_detect_digits_with_the_generated_client(client: Any) -> None:
    models, detect = _module("models"), _module("api.inference.detect")
    image = _module("types").File(
        payload=io.BytesIO((SAMPLES / "digits.jpg").read_bytes()),
        file_name="digits.jpg",
        mime_type="image/jpeg",
    )
    result = detect.sync("digits", client=client, body=models.ImageForm(image=[image]))
    assert isinstance(result, models.DetectResult)
    assert (result.image.width, result.image.height) == (1280, 720)
    truth = json.loads((SAMPLES / "digits.json").read_text(encoding="utf-8"))["digits"]
    detections = [item.to_dict() for item in result.detections]
    assert Counter(d["label"] for d in detections) == Counter(t["label"] for t in truth)
    boxes = [tuple(t["box"].values()) for t in truth]
    assert not unmatched_digits(detections, boxes, [int(t["label"]) for t in truth])


def test_classify_a_batch_as_json_with_the_generated_client(client: Any) -> None:
    models, classify = _module("models"), _module("api.inference.classify")
    seven = base64.b64encode((SAMPLES / "seven.png").read_bytes()).decode()
    body = models.ClassifyBatchRequest(
        images=[models.ImageData(b64=seven), models.ImageData(b64="aGVsbG8=")], top_k=3
    )
    result = classify.sync("digit-classes", client=client, body=body)
    assert isinstance(result, models.ClassifyBatchResult)
    first, second = result.results
    assert isinstance(first, models.ClassifyResult)
    assert first.classifications[0].label == "7"
    assert len(first.classifications) == 3
    assert isinstance(second, models.ItemError)
    assert second.error.type_ == models.ProblemType.UNSUPPORTED_IMAGE


def test_classify_seven_with_the_generated_client(client: Any) -> None:
    models, classify = _module("models"), _module("api.inference.classify")
    image = _module("types").File(
        payload=io.BytesIO((SAMPLES / "seven.png").read_bytes()), file_name="seven.png"
    )
    result = classify.sync("digit-classes", client=client, body=models.ImageForm(image=[image]))
    assert isinstance(result, models.ClassifyResult)
    assert result.classifications[0].label == "7"
    assert result.classifications[0].probability > 0.9


def test_list_and_describe_models_with_the_generated_client(client: Any) -> None:
    models = _module("models")
    listed = _module("api.models.list_models").sync(client=client)
    assert isinstance(listed, models.ModelList)
    names = [model.name for model in listed.models]
    assert names == list(load_settings({}).models)  # the demo registry, in its order
    assert all(model.serving.ready for model in listed.models)
    one = _module("api.models.get_model").sync("digit-classes", client=client)
    assert isinstance(one, models.Model)
    assert one.labels == [str(digit) for digit in range(10)]
    missing = _module("api.models.get_model").sync("nope", client=client)
    assert isinstance(missing, models.Problem)
    assert missing.type_ == models.ProblemType.UNKNOWN_MODEL
    assert missing.status == 404
