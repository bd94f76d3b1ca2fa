"""`adapter._native` stays private: only `adapter.imaging` (images in) and
`adapter.postprocess` (model answers out) import it, and its stubs match."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import adapter

PACKAGE = Path(adapter.__file__).parent


def imports_native(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(alias.name == "adapter._native" for alias in node.names):
                return True
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = {alias.name for alias in node.names}
            if module == "adapter._native" or (module == "adapter" and "_native" in names):
                return True
            relative = node.level > 0
            if relative and (module == "_native" or (module == "" and "_native" in names)):
                return True
    return False


def test_only_imaging_and_postprocess_import_the_extension() -> None:
    importers = sorted(
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if imports_native(path)
    )
    assert importers == ["imaging.py", "postprocess.py"]


def test_typing_marker_and_stub_ship_with_the_package() -> None:
    assert (PACKAGE / "py.typed").is_file()
    assert (PACKAGE / "_native.pyi").is_file()


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy not installed")
def test_stub_matches_the_extension() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "adapter._native"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
