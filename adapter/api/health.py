"""``GET /healthz`` (the process is alive) and ``GET /readyz`` (models are servable)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from adapter import errors
from adapter.pipeline import Pipeline

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Liveness: answers while the worker can run Python; never calls the backend."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Readiness: every model's servable is AVAILABLE and its signature matches the registry."""
    pipeline: Pipeline = current_app.extensions["pipeline"]
    report = pipeline.catalog.readiness()
    not_ready = sorted(name for name, state in report.items() if not state["ready"])
    if not_ready:
        problems = [problem for name in not_ready for problem in report[name].get("problems", [])]
        detail = f"Not every model is ready: {', '.join(not_ready)}."
        raise errors.NotReady(" ".join([detail, *problems]), errors={"models": report})
    return jsonify({"status": "ready", "models": report})
