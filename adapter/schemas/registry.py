"""Schema of the model registry file (YAML), validated once at start.

Unknown keys are rejected everywhere, so a typo in the registry fails the
start instead of silently changing behaviour.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

TASKS = ("detection", "classification")
RESIZE_MODES = ("stretch", "letterbox", "crop", "resize_shorter_crop")
FILTERS = ("bilinear", "area", "lanczos")
COLORS = ("rgb", "bgr", "gray")
LAYOUTS = ("nhwc", "nchw")
INPUT_DTYPES = ("uint8", "float32")
TRANSPORTS = ("grpc", "rest")
ENCODINGS = ("tensor", "bytes")
# Output roles each task's mapper reads; "required" ones must be configured.
OUTPUT_ROLES: dict[str, dict[str, tuple[str, ...]]] = {
    "detection": {"required": ("boxes", "classes", "scores"), "optional": ("count",)},
    "classification": {"required": ("probabilities",), "optional": ("classes",)},
}
# The names TF's Object Detection API and the ResNet/ImageNet signatures use:
# an output role left out of the registry is looked up under these.
CONVENTIONAL_OUTPUTS: dict[str, dict[str, str]] = {
    "detection": {
        "boxes": "detection_boxes",
        "classes": "detection_classes",
        "scores": "detection_scores",
        "count": "num_detections",
    },
    "classification": {"probabilities": "probabilities", "classes": "classes"},
}
MAX_INPUT_SIDE = 16384


class ServingSchema(Schema):
    """Which TF Serving servable a public model calls, and how it is reached."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1))
    signature = fields.String(load_default="serving_default")
    version = fields.Integer(load_default=None, validate=validate.Range(min=1))
    version_label = fields.String(load_default=None, validate=validate.Length(min=1))
    # grpc (default) or TF Serving's REST API; the target defaults to
    # ADAPTER_TFS_TARGET / ADAPTER_TFS_REST_TARGET.
    transport = fields.String(load_default="grpc", validate=validate.OneOf(TRANSPORTS))
    target = fields.String(load_default=None, validate=validate.Length(min=1))
    # Versions and labels a request may pick with ?version=; none by default.
    allow_versions = fields.List(fields.Integer(validate=validate.Range(min=1)), load_default=list)
    allow_labels = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)

    @validates_schema
    def _one_version_choice(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("version") is not None and data.get("version_label") is not None:
            raise ValidationError("give version or version_label, not both", "version_label")


def _channel_values() -> fields.List[float]:
    return fields.List(
        fields.Float(allow_nan=False),
        validate=validate.Length(min=1, max=3),
        load_default=None,
    )


class InputSchema(Schema):
    """How the image becomes the model's input tensor.

    ``tensor``, ``encoding``, ``dtype`` and ``size`` may be left out: they are
    then read from the model's signature (GetModelMetadata) at start.
    """

    class Meta:
        unknown = RAISE

    tensor = fields.String(load_default=None, validate=validate.Length(min=1))
    # "tensor": decoded + resized by the adapter; "bytes": the original file
    # goes to the model as a DT_STRING tensor (ResNet image_bytes style).
    encoding = fields.String(load_default=None, validate=validate.OneOf(ENCODINGS))
    dtype = fields.String(load_default=None, validate=validate.OneOf(INPUT_DTYPES))
    size = fields.List(
        fields.Integer(validate=validate.Range(min=1, max=MAX_INPUT_SIDE)),
        validate=validate.Length(equal=2),
        load_default=None,
    )
    resize = fields.String(load_default="stretch", validate=validate.OneOf(RESIZE_MODES))
    shorter_side = fields.Integer(
        load_default=None, validate=validate.Range(min=1, max=16 * MAX_INPUT_SIDE)
    )
    filter = fields.String(load_default="bilinear", validate=validate.OneOf(FILTERS))
    pad_value = fields.Integer(load_default=0, validate=validate.Range(min=0, max=255))
    background = fields.List(
        fields.Integer(validate=validate.Range(min=0, max=255)),
        validate=validate.Length(equal=3),
        load_default=None,
    )
    color = fields.String(load_default="rgb", validate=validate.OneOf(COLORS))
    layout = fields.String(load_default="nhwc", validate=validate.OneOf(LAYOUTS))
    # Normalization for float32 inputs, one value per channel (or one for all):
    # (v - mean) / std, or v * scale + offset, with v in 0..255.
    mean = _channel_values()
    std = _channel_values()
    scale = _channel_values()
    offset = _channel_values()


class ModelSchema(Schema):
    """One public model of the registry."""

    class Meta:
        unknown = RAISE

    task = fields.String(required=True, validate=validate.OneOf(TASKS))
    description = fields.String(load_default="")
    serving = fields.Nested(ServingSchema, required=True)
    input = fields.Nested(InputSchema, required=True)
    # Output role -> signature output name; roles left out are found by their
    # conventional names (detection_boxes, probabilities, ...) in the signature.
    outputs = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    labels = fields.String(load_default=None)
    background_class = fields.Integer(load_default=None, validate=validate.Range(min=0))
    deadline_ms = fields.Integer(load_default=None, validate=validate.Range(min=1, max=600_000))

    @validates_schema
    def _outputs_for_task(self, data: dict[str, Any], **_: Any) -> None:
        roles = OUTPUT_ROLES[data["task"]]
        unknown = sorted(set(data["outputs"]) - set(roles["required"]) - set(roles["optional"]))
        if unknown:
            raise ValidationError(f"unknown output roles: {', '.join(unknown)}", "outputs")


class RegistrySchema(Schema):
    """The whole registry file: ``models: {public-name: model}``."""

    class Meta:
        unknown = RAISE

    models = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")),
        values=fields.Nested(ModelSchema),
        required=True,
        validate=validate.Length(min=1),
    )


REGISTRY_SCHEMA = RegistrySchema()
