"""``tfs-adapter serve``: run the adapter under gunicorn with the packaged settings."""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    """Replace this process with gunicorn; extra arguments go to gunicorn."""
    command = [sys.executable, "-m", "gunicorn", "-c", "python:adapter.gunicorn_conf", *argv]
    os.execv(sys.executable, command)
    return 0  # not reached: execv only returns by raising
