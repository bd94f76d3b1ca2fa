"""``GET /healthz`` (the process is alive) and ``GET /readyz`` (models are servable)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from adapter import errors
from adapter.pipeline import Pipeline
from adapter.serving.client import ModelRef

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Liveness: answers while the worker can run Python; never calls the backend."""
    return jsonify({"status": "ok"})


def _servable_state(pipeline: Pipeline, ref: ModelRef) -> dict[str, Any]:
    try:
        versions = pipeline.client.model_status(ref, timeout_s=pipeline.settings.status_timeout_s)
    except errors.ApiError as exc:
        return {"ready": False, "state": "UNREACHABLE" if exc.status >= 500 else "NOT_FOUND"}
    available = [status.version for status in versions if status.available]
    states = sorted({status.state for status in versions}) or ["UNKNOWN"]
    return {
        "ready": bool(available),
        "state": "AVAILABLE" if available else "/".join(states),
        "version": max(available) if available else None,
    }


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Readiness: every configured model's servable reports AVAILABLE in TF Serving."""
    pipeline: Pipeline = current_app.extensions["pipeline"]
    checked: dict[ModelRef, dict[str, Any]] = {}
    report: dict[str, dict[str, Any]] = {}
    for name, config in pipeline.settings.models.items():
        if config.serving not in checked:  # models sharing a servable ask once
            checked[config.serving] = _servable_state(pipeline, config.serving)
        report[name] = checked[config.serving]
    not_ready = sorted(name for name, state in report.items() if not state["ready"])
    if not_ready:
        raise errors.NotReady(
            f"Not every model is available: {', '.join(not_ready)}.", errors={"models": report}
        )
    return jsonify({"status": "ready", "models": report})
