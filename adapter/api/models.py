"""``GET /v1/models`` and ``GET /v1/models/{model}``: what the service can do."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from adapter.api import service
from adapter.results import InputDescription, ModelDescription

bp = Blueprint("models", __name__, url_prefix="/v1/models")


def describe(model: ModelDescription) -> dict[str, Any]:
    """The public description of one model and its servable's state (no addresses)."""
    entry, state = model.entry, model.state
    return {
        "name": entry.name,
        "task": entry.task,
        "description": entry.description,
        "endpoint": f"/v1/models/{entry.name}/"
        + ("detect" if entry.task == "detection" else "classify"),
        "input": _describe_input(model.input),
        "labels": entry.label_names,
        "serving": {"version": state.version, "state": state.state, "ready": state.ready},
        "output": _describe_output(model),
        "hints": list(model.hints),
    }


def _describe_output(model: ModelDescription) -> dict[str, Any]:
    """How the outputs are read: the format (once resolved) and its options."""
    entry = model.entry
    if entry.task == "classification":
        return {"format": "classification", "activation": entry.activation,
                "multi_label": entry.activation == "sigmoid"}  # fmt: skip
    output_format = model.output_format or entry.format
    described: dict[str, Any] = {"format": output_format}
    if output_format == "yolo":
        described["nms_iou"] = entry.nms_iou
    return described


def _describe_input(spec: InputDescription) -> dict[str, Any]:
    if spec.resize == "fit":
        return {"encoding": spec.encoding, "dtype": spec.dtype, "size": None, "resize": "fit",
                "max_side": spec.max_side, "color": spec.color, "layout": spec.layout}  # fmt: skip
    if spec.size is None:
        return {"encoding": spec.encoding, "dtype": spec.dtype, "size": None, "resize": None}
    return {
        "encoding": spec.encoding,
        "dtype": spec.dtype,
        "size": list(spec.size),
        "resize": spec.resize,
        "color": spec.color,
        "layout": spec.layout,
    }


@bp.get("")
def list_models() -> ResponseReturnValue:
    """All configured models, in registry order, with their servables' state."""
    return jsonify({"models": [describe(model) for model in service().models()]})


@bp.get("/<model>")
def get_model(model: str) -> ResponseReturnValue:
    """One model; 404 ``unknown-model`` if the registry has no such name."""
    return jsonify(describe(service().model(model)))
