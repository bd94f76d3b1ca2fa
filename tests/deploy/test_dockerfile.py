"""deploy/Dockerfile: what each stage holds, and that its health check and config work.

No Docker engine is needed: the file is parsed (dockerfile-parse), its HEALTHCHECK
command is run against a real gunicorn, and gunicorn checks the config the image
starts with, under the image's environment.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from dockerfile_parse import DockerfileParser

from adapter.modelserver.testing import free_port
from tests.deploy.conftest import DEPLOY, ROOT

PARSER = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
INSTRUCTIONS = [i for i in PARSER.structure if i["instruction"] != "COMMENT"]
FROMS = [n for n, i in enumerate(INSTRUCTIONS) if i["instruction"] == "FROM"]
BUILDER = INSTRUCTIONS[FROMS[0] : FROMS[1]]
RUNTIME = INSTRUCTIONS[FROMS[-1] :]
# The build arguments declared before the first stage, with their defaults.
GLOBAL_ARGS = dict(
    i["value"].split("=", 1) for i in INSTRUCTIONS[: FROMS[0]] if i["instruction"] == "ARG"
)
IGNORED = [
    line.strip()
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
]


def _values(stage: list[dict[str, Any]], instruction: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == instruction]


def _env(stage: list[dict[str, Any]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in _values(stage, "ENV"):
        env.update(item.split("=", 1) for item in shlex.split(value))
    return env


def _healthcheck_command() -> list[str]:
    (value,) = _values(RUNTIME, "HEALTHCHECK")
    command = json.loads(value.split(" CMD ", 1)[1])
    assert isinstance(command, list)
    return [str(part) for part in command]


def _ignored(path: str) -> bool:
    """Whether .dockerignore drops ``path`` or a directory above it (no `!` rules used)."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in IGNORED:
        bare = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(Path(prefix).name, bare):
                return True
    return False


def test_a_builder_and_a_runtime_stage_from_a_pinned_slim_python() -> None:
    froms = [i["value"].split() for i in INSTRUCTIONS if i["instruction"] == "FROM"]
    assert [words[-1] for words in froms] == ["builder", "prebuilt", "wheels", "runtime"]
    # The wheels come from the builder unless the build says otherwise (make image-test).
    assert froms[2][0] == "${WHEELS}" and GLOBAL_ARGS["WHEELS"] == "builder"
    assert (froms[0][0], froms[3][0]) == ("${PYTHON_IMAGE}", "${PYTHON_IMAGE}")
    assert GLOBAL_ARGS["PYTHON_IMAGE"].startswith("python:3.11-slim-")  # names the Debian release


def test_builder_makes_the_wheel_with_rust_and_maturin() -> None:
    run = " ".join(_values(BUILDER, "RUN"))
    for needed in ("rustup", "cmake", "nasm", "maturin"):
        assert needed in run
    assert "maturin build --release --locked --out /dist" in run


def test_runtime_installs_the_wheel_only() -> None:
    (run,) = _values(RUNTIME, "RUN")
    assert "from=wheels,source=/dist" in run
    (pip,) = [c.strip() for c in run.split("&&") if "pip install" in c]
    assert pip.split("pip install", 1)[1].split() == [
        "--no-cache-dir", "--find-links", "/dist", "/dist/tfs_adapter-*.whl"
    ]  # fmt: skip
    text = "\n".join(i["content"] for i in RUNTIME).lower()
    for absent in ("rustup", "cargo", "gcc", "build-essential", "apt-get install", "tensorflow"):
        assert absent not in text, absent
    assert "[backend" not in text


def test_runtime_runs_as_a_numeric_non_root_user() -> None:
    users = _values(RUNTIME, "USER")
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)
    last_user = max(n for n, i in enumerate(RUNTIME) if i["instruction"] == "USER")
    assert last_user < max(n for n, i in enumerate(RUNTIME) if i["instruction"] == "CMD")


def test_exposed_port_is_the_bound_one() -> None:
    env = _env(RUNTIME)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert _values(RUNTIME, "EXPOSE") == [env["ADAPTER_BIND"].rsplit(":", 1)[1]]


def test_cmd_uses_the_copied_gunicorn_config() -> None:
    (cmd,) = _values(RUNTIME, "CMD")
    command = json.loads(cmd)
    assert command[:2] == ["gunicorn", "-c"]
    copies = dict(reversed(v.split()) for v in _values(RUNTIME, "COPY"))
    assert copies[command[2]] == "deploy/gunicorn.conf.py"


def test_build_context_keeps_what_copy_needs_and_drops_the_rest() -> None:
    for value in _values(BUILDER, "COPY") + _values(RUNTIME, "COPY"):
        *sources, _ = value.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not _ignored(source), source
    for heavy in (".git", ".venv", "var/models", "rust_ext/target/release", "bench/results"):
        assert _ignored(heavy), heavy
    assert _ignored("adapter/_native.cpython-311-x86_64-linux-gnu.so")
    assert not _ignored("adapter/openapi.yaml")


def test_healthcheck_passes_on_a_live_adapter_and_fails_without_one(live_url: str) -> None:
    command = _healthcheck_command()
    assert command[0] == "python" and "/healthz" in command[-1]
    python = [sys.executable, *command[1:]]
    live = {**os.environ, "ADAPTER_BIND": "0.0.0.0:" + live_url.rsplit(":", 1)[1]}
    assert subprocess.run(python, env=live, timeout=30).returncode == 0
    dead = {**os.environ, "ADAPTER_BIND": f"0.0.0.0:{free_port()}"}
    result = subprocess.run(python, env=dead, capture_output=True, timeout=30)
    assert result.returncode != 0


def test_gunicorn_accepts_the_image_config(pod_registry: Path) -> None:
    env = {
        **os.environ,
        **_env(RUNTIME),
        "ADAPTER_MODELS": str(pod_registry),
        "ADAPTER_TFS_TARGET": "dns:///tfserving-headless.tfs-adapter.svc.cluster.local:8500",
    }
    config = str(DEPLOY / "gunicorn.conf.py")
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", config],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
