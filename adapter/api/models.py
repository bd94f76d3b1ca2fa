"""``GET /v1/models``: what the service can do."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from adapter.config import InputSpec, ModelConfig

bp = Blueprint("models", __name__, url_prefix="/v1/models")


def describe(config: ModelConfig) -> dict[str, Any]:
    """The public description of one model (no backend addresses)."""
    spec = config.input
    labels = [
        name
        for class_id, name in enumerate(config.labels.names)
        if class_id != config.background_class and name
    ]
    return {
        "name": config.name,
        "task": config.task,
        "description": config.description,
        "endpoint": f"/v1/models/{config.name}/"
        + ("detect" if config.task == "detection" else "classify"),
        "input": _describe_input(spec),
        "labels": labels,
    }


def _describe_input(spec: InputSpec) -> dict[str, Any]:
    prep = spec.preprocessing
    if prep is None:
        dtype = "string" if spec.encoding == "bytes" else spec.dtype
        return {"encoding": spec.encoding, "dtype": dtype, "size": None, "resize": None}
    return {
        "encoding": spec.encoding,
        "dtype": prep.dtype,
        "size": list(prep.size),
        "resize": prep.resize,
        "color": prep.color,
        "layout": prep.layout,
    }


@bp.get("")
def list_models() -> ResponseReturnValue:
    """All configured models, in registry order."""
    catalog = current_app.extensions["pipeline"].catalog
    models = catalog.settings.models.values()
    return jsonify({"models": [describe(catalog.known(config)) for config in models]})
