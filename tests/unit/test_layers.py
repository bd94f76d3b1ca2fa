"""The layers of docs/architecture.md hold: HTTP stays at the edge, the core never sees it.

Read from the source with :mod:`ast`, so a new module is checked the day it
is added. Imports under ``if TYPE_CHECKING:`` are for annotations only and
do not count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import adapter

PACKAGE = Path(adapter.__file__).parent

HTTP_EDGE = (
    "api/", "app.py", "accesslog.py", "gunicorn_conf.py", "serve.py", "worker.py", "framing.py",
)  # fmt: skip
"""The HTTP layer and the process that serves it: the only clients of the Service."""

OWN_PROGRAMS = ("modelserver/", "cli.py", "local.py")
"""The local model server (a TF Serving stand-in) and the command line: programs of their own."""

HTTP_TO_TF_SERVING = ("serving/rest_client.py",)
"""TF Serving's REST API is HTTP: its statuses are mapped to gRPC codes here, once."""

HTTP_MODULES = ("flask", "werkzeug", "adapter.api")


def modules(*excluded: str) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name.startswith("serving/protos/") or name.startswith(excluded):
            continue
        yield name, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def runtime_imports(tree: ast.Module) -> Iterator[str]:
    """Every module imported outside ``if TYPE_CHECKING:`` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            if node.module == "adapter":
                yield from (f"adapter.{alias.name}" for alias in node.names)


def test_only_the_http_layer_imports_the_web_framework_or_the_api() -> None:
    offenders = {
        name: sorted(
            module
            for module in runtime_imports(tree)
            if any(module == http or module.startswith(f"{http}.") for http in HTTP_MODULES)
        )
        for name, tree in modules(*HTTP_EDGE)
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_core_names_no_http_status() -> None:
    statuses = {
        name: sorted(
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and type(node.value) is int
            and 400 <= node.value < 600
        )
        for name, tree in modules(*HTTP_EDGE, *OWN_PROGRAMS, *HTTP_TO_TF_SERVING)
    }
    assert {name: found for name, found in statuses.items() if found} == {}


def test_the_checks_see_the_http_layer() -> None:
    """The two checks above would catch a status or a flask import: the edge has both."""
    edge = dict(modules())
    assert any(module == "flask" for module in runtime_imports(edge["api/inference.py"])), (
        "the parser no longer sees imports"
    )
    problems = ast.unparse(edge["api/problems.py"])
    assert "404" in problems


def test_the_core_is_not_imported_around_the_service() -> None:
    """The HTTP layer reaches the core through the Service, not the pipeline or catalog."""
    inner = ("adapter.pipeline", "adapter.catalog", "adapter.resolution", "adapter.serving")
    reaching = {
        name: sorted(
            module
            for module in runtime_imports(tree)
            if any(module == core or module.startswith(f"{core}.") for core in inner)
        )
        for name, tree in modules()
        if name.startswith("api/") or name == "app.py"
    }
    # Value types only: Call and ClassifyOptions, and the Deadline a request starts.
    allowed = {"adapter.pipeline", "adapter.serving.resilience"}
    assert {n: set(found) - allowed for n, found in reaching.items() if set(found) - allowed} == {}
