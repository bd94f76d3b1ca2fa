"""Shared fixtures: the demo models, a real local model server, the app and its client.

Everything here is real: the model server is a separate process speaking TF
Serving's gRPC API, and the app talks to it over loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapter.app import create_app
from adapter.config import Settings, load_settings
from adapter.modelserver.testing import ModelServer, start_model_server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo SavedModels: ``$ADAPTER_DEMO_MODELS_DIR`` (as `make test` sets), built if needed."""
    given = os.environ.get("ADAPTER_DEMO_MODELS_DIR")
    out = Path(given) if given else ROOT / "var" / "models"
    # The builder's cache makes this a stamp check when `make` built them already.
    subprocess.run(
        [sys.executable, "-m", "adapter.modelserver.demo_models.build", "--out", str(out)],
        check=True,
    )
    return out


@pytest.fixture(scope="session")
def model_server(demo_models_dir: Path) -> Iterator[ModelServer]:
    """The local model server serving the demo models on a free loopback port."""
    with start_model_server(["--models_dir", str(demo_models_dir)]) as server:
        yield server


@pytest.fixture(scope="session")
def settings(model_server: ModelServer) -> Settings:
    """The demo registry pointed at the running model server."""
    return load_settings({"ADAPTER_TFS_TARGET": model_server.target})


@pytest.fixture(scope="session")
def app(settings: Settings) -> Flask:
    """The adapter app (in-process Flask) talking to the real model server."""
    application = create_app(settings)
    application.config["TESTING"] = True
    return application


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    """A test client of :func:`app`."""
    return app.test_client()
