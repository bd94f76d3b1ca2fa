"""``GET /healthz`` (the process is alive) and ``GET /readyz`` (models are servable)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from adapter.api import problems, service
from adapter.results import ModelState

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Liveness: answers while the worker can run Python; never calls the backend."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Readiness: every model's servable is AVAILABLE and its signature matches the registry."""
    readiness = service().readiness()
    report = {name: _state(state) for name, state in readiness.models.items()}
    not_ready = readiness.not_ready
    if not_ready:
        found = [problem for name in not_ready for problem in readiness.models[name].problems]
        detail = f"Not every model is ready: {', '.join(not_ready)}."
        raise problems.NotReady(" ".join([detail, *found]), errors={"models": report})
    return jsonify({"status": "ready", "models": report})


def _state(state: ModelState) -> dict[str, Any]:
    body: dict[str, Any] = {"ready": state.ready, "state": state.state, "version": state.version}
    if state.problems:
        body["problems"] = list(state.problems)
    body["circuit"] = state.circuit
    return body
