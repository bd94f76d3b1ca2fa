"""``GET /v1/models`` and ``GET /v1/models/{model}``: what the service can do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from adapter.catalog import Catalog
from adapter.pipeline import Pipeline
from adapter.registry import InputEntry, RegistryEntry

bp = Blueprint("models", __name__, url_prefix="/v1/models")


def describe(config: RegistryEntry, state: Mapping[str, Any]) -> dict[str, Any]:
    """The public description of one model and its servable's ``state`` (no addresses)."""
    spec = config.input
    return {
        "name": config.name,
        "task": config.task,
        "description": config.description,
        "endpoint": f"/v1/models/{config.name}/"
        + ("detect" if config.task == "detection" else "classify"),
        "input": _describe_input(spec),
        "labels": config.label_names,
        "serving": {
            "version": state.get("version"),
            "state": state.get("state", "UNKNOWN"),
            "ready": bool(state.get("ready")),
        },
    }


def _describe_input(spec: InputEntry) -> dict[str, Any]:
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


def _catalog() -> Catalog:
    pipeline: Pipeline = current_app.extensions["pipeline"]
    return pipeline.catalog


@bp.get("")
def list_models() -> ResponseReturnValue:
    """All configured models, in registry order, with their servables' state."""
    catalog = _catalog()
    states = catalog.readiness()
    models = catalog.settings.models.values()
    return jsonify(
        {"models": [describe(catalog.known(config), states[config.name]) for config in models]}
    )


@bp.get("/<model>")
def get_model(model: str) -> ResponseReturnValue:
    """One model; 404 ``unknown-model`` if the registry has no such name."""
    catalog = _catalog()
    config = catalog.model(model)
    state = catalog.state(config)  # resolves the signature, so describe() sees it complete
    return jsonify(describe(catalog.known(config), state))
