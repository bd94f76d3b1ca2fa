"""The container, run for real: the runtime image, read-only as UID 10001, against the model server.

The image is built by :mod:`tests.image.build` (a debootstrap base, the wheels,
the Dockerfile's own runtime stage) and started by podman with the host's
network, so it reaches the local model server on loopback as a pod reaches
TF Serving's Service. Like the Kubernetes manifest it runs with a read-only
root filesystem and a tmpfs ``/tmp``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator

import pytest
import requests

from adapter.modelserver.testing import ModelServer, free_port
from tests.contract import check
from tests.e2e.backends import SAMPLES
from tests.image.build import RUNTIME, ULIMITS, build_image, podman

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is installed by `make test`"),
]
NAME = "tfs-adapter-image-test"


@pytest.fixture(scope="module")
def container(model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The image running detached; yields its URL, and stops it after."""
    image = build_image(tmp_path_factory.mktemp("image"))
    podman("rm", "--force", "--ignore", NAME)
    port = free_port()
    podman(
        "run", "--detach", "--name", NAME, *RUNTIME, *ULIMITS, "--network", "host",
        "--read-only", "--tmpfs", "/tmp",
        "--env", f"ADAPTER_TFS_TARGET={model_server.target}",
        "--env", f"ADAPTER_BIND=127.0.0.1:{port}", "--env", "ADAPTER_WORKERS=2",
        image,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, podman("logs", NAME, check=False)[-3000:]
            time.sleep(0.25)
        yield url
    finally:
        podman("stop", "--time", "20", NAME, check=False)
        exit_code = podman("inspect", NAME, "--format", "{{.State.ExitCode}}", check=False)
        podman("rm", "--force", "--ignore", NAME, check=False)
    assert exit_code.strip() == "0"  # a clean stop on SIGTERM


def test_the_image_answers_health_readiness_and_a_detect(container: str) -> None:
    health = requests.get(f"{container}/healthz", timeout=10)
    assert health.status_code == 200
    ready = requests.get(f"{container}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["models"]["digits"]["ready"]
    detect = requests.post(
        f"{container}/v1/models/digits/detect",
        files={"image": ("digits.jpg", (SAMPLES / "digits.jpg").read_bytes())},
        timeout=30,
    )
    assert detect.status_code == 200, detect.text
    check("POST", "/v1/models/digits/detect", 200, detect.headers, detect.content)
    truth = json.loads((SAMPLES / "digits.json").read_text())["digits"]  # the digits drawn
    found = sorted(d["label"] for d in detect.json()["detections"])
    assert found == sorted(d["label"] for d in truth)


def test_it_runs_as_uid_10001_on_a_read_only_root(container: str) -> None:
    assert podman("exec", NAME, "id", "-u").strip() == "10001"
    assert podman("inspect", NAME, "--format", "{{.HostConfig.ReadonlyRootfs}}").strip() == "true"
    denied = podman("exec", NAME, "sh", "-c", "touch /app/x 2>&1; echo $?", check=False)
    assert "Read-only file system" in denied
    # No TensorFlow, no compiler in the runtime image.
    probe = "import importlib.util as u; print(u.find_spec('tensorflow'))"
    assert podman("exec", NAME, "python", "-c", probe).strip() == "None"
    assert podman("exec", NAME, "sh", "-c", "command -v gcc cargo || true").strip() == ""
