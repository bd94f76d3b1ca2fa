"""Shared fixtures: the demo models, a real local model server, the app and its client.

Everything here is real: the model server is a separate process speaking TF
Serving's gRPC API, and the app talks to it over loopback. Every response the
test client and :func:`live_session` receive is checked against openapi.yaml
(:mod:`tests.contract`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from adapter.app import create_app
from adapter.config import Settings, load_settings
from adapter.modelserver.testing import ModelServer, start_model_server
from tests.contract import ContractClient, contract_session
from tests.helpers import adapter_under_gunicorn

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _contract_clients() -> Iterator[None]:
    """Every app a test builds, not only :func:`app`, gets a client that checks the contract."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Flask, "test_client_class", ContractClient)
        yield


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
    application.test_client_class = ContractClient
    return application


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    """A test client of :func:`app`."""
    return app.test_client()


@pytest.fixture(scope="session")
def live_url(model_server: ModelServer) -> Iterator[str]:
    """The adapter under real gunicorn (one worker) talking to :func:`model_server`."""
    with adapter_under_gunicorn(model_server.target) as (url, _):
        yield url


@pytest.fixture()
def live_session() -> Iterator[requests.Session]:
    """A ``requests`` session whose every response is checked against openapi.yaml."""
    with contract_session() as session:
        yield session
