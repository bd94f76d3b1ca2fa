"""The ``tfs-adapter`` command line.

Subcommands import what they need lazily, so ``tfs-adapter serve`` never
loads TensorFlow and ``tfs-adapter model-server`` is the only one that does.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# subcommand -> (module, help); each module has ``main(argv) -> int``.
_COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("adapter.serve", "run the HTTP adapter under gunicorn"),
    "run-local": (
        "adapter.local",
        "start the local model server and the adapter together (make run)",
    ),
    "model-server": (
        "adapter.modelserver.server",
        "run the local TF-Serving-compatible model server (backend extra)",
    ),
    "inspect": (
        "adapter.inspect_model",
        "print a served model's signatures like saved_model_cli show (over gRPC)",
    ),
    "build-demo-models": (
        "adapter.modelserver.demo_models.build",
        "build the demo SavedModels (backend extra; cached)",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``tfs-adapter SUBCOMMAND [args...]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="tfs-adapter", description=__doc__)
    parser.add_argument("command", choices=sorted(_COMMANDS))
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in _COMMANDS:
        parser.error(f"unknown command {command!r}")
    module_name, _ = _COMMANDS[command]
    entry: Callable[[list[str]], int] = importlib.import_module(module_name).main
    return entry(rest)


if __name__ == "__main__":
    raise SystemExit(main())
