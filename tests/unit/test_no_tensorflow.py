"""The adapter's import graph never loads TensorFlow (fast cold starts, small workers)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from adapter.app import create_app
app = create_app()
with app.test_client() as client:
    client.get("/v1/models")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
      ("tensorflow", "tensorflow_serving", "keras", "tf_keras", "jax", "torch"))))
"""


def test_create_app_loads_no_tensorflow() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_cli_loads_no_tensorflow_for_the_adapter() -> None:
    probe = (
        "import sys, adapter.cli, adapter.local, adapter.gunicorn_conf; "
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
