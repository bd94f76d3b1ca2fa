"""Every curl example in the README and docs/ works against the real service, as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHOWN_URL = "http://localhost:8080"


def _curl_commands() -> list[str]:
    """Each ``curl`` command of the pages' sh blocks, continuation lines joined."""
    commands = []
    text = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        joined = block.replace("\\\n", " ")
        commands += [line.strip() for line in joined.splitlines() if line.startswith("curl ")]
    return [command for command in commands if SHOWN_URL in command]


COMMANDS = _curl_commands()


def test_the_docs_show_every_input_style() -> None:
    shown = " ".join(COMMANDS)
    for style in ("-F image=@", "b64", "Content-Type: image/jpeg", "Accept: image/png"):
        assert style in shown, style


@pytest.mark.parametrize("command", COMMANDS, ids=range(len(COMMANDS)))
def test_readme_curl_example(live_url: str, tmp_path: Path, command: str) -> None:
    command = command.replace(SHOWN_URL, live_url)
    output = re.search(r" -o (\S+)", command)
    if output:
        command = command.replace(output.group(0), f" -o {shlex.quote(str(tmp_path / 'out'))}")
    env = {**os.environ, "KEY": "not-needed-while-keys-are-off"}
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    if output:
        assert (tmp_path / "out").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        return
    body = json.loads(result.stdout)
    if "README.md" in command:  # the examples of a file that is not an image
        problems = [body] if "results" not in body else [r["error"] for r in body["results"][1:]]
        assert [problem["status"] for problem in problems] == [415]
        return
    assert "status" not in body, body  # not a problem+json answer
    assert {"models", "detections", "classifications"} & set(body), body
