"""Schema of the model registry file (YAML), validated once at start.

Unknown keys are rejected everywhere, so a typo in the registry fails the
start instead of silently changing behaviour.
"""

from __future__ import annotations

from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

TASKS = ("detection", "classification")
RESIZE_MODES = ("stretch", "letterbox", "crop", "resize_shorter_crop", "fit")
FILTERS = ("bilinear", "area", "lanczos")
COLORS = ("rgb", "bgr", "gray")
LAYOUTS = ("nhwc", "nchw")
INPUT_DTYPES = ("uint8", "float32")
TRANSPORTS = ("grpc", "rest")
ENCODINGS = ("tensor", "bytes")
DETECTION_FORMATS = ("tf_od_api", "yolo")
ACTIVATIONS = ("none", "softmax", "sigmoid")
YOLO_BOXES = ("pixels", "normalized")
# Output roles each output format's mapper reads, "required" and "optional";
# classification has one format, "classification".
OUTPUT_ROLES: dict[str, dict[str, tuple[str, ...]]] = {
    "tf_od_api": {"required": ("boxes", "classes", "scores"), "optional": ("count", "masks")},
    "yolo": {"required": ("predictions",), "optional": ()},
    "classification": {"required": ("probabilities",), "optional": ("classes",)},
}
TASK_FORMATS: dict[str, tuple[str, ...]] = {
    "detection": DETECTION_FORMATS,
    "classification": ("classification",),
}
# The names TF's Object Detection API and the ResNet/ImageNet signatures use:
# an output role left out of the registry is looked up under these.
CONVENTIONAL_OUTPUTS: dict[str, dict[str, str]] = {
    "tf_od_api": {
        "boxes": "detection_boxes",
        "classes": "detection_classes",
        "scores": "detection_scores",
        "count": "num_detections",
        "masks": "detection_masks",
    },
    "yolo": {},
    "classification": {"probabilities": "probabilities", "classes": "classes"},
}
MAX_INPUT_SIDE = 16384
DEFAULT_MAX_SIDE = 1024
"""``resize: fit``'s longest side when the registry gives no ``max_side``."""
DEFAULT_NMS_IOU = 0.45


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
    # Left out: fit when the signature's height and width are open, letterbox
    # for YOLO, else stretch (adapter.resolution decides, from the signature).
    resize = fields.String(load_default=None, validate=validate.OneOf(RESIZE_MODES))
    # fit: the longest side sent (default 1024), and whether to enlarge too.
    max_side = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_INPUT_SIDE))
    upscale = fields.Boolean(load_default=False)
    shorter_side = fields.Integer(
        load_default=None, validate=validate.Range(min=1, max=16 * MAX_INPUT_SIDE)
    )
    filter = fields.String(load_default="bilinear", validate=validate.OneOf(FILTERS))
    # Left out: 114 for YOLO (as ultralytics pads), else 0.
    pad_value = fields.Integer(load_default=None, validate=validate.Range(min=0, max=255))
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

    @validates_schema
    def _fit_fields(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("resize") == "fit" and data.get("size") is not None:
            raise ValidationError(
                "resize fit sends each image at its own size: give max_side", "size"
            )
        if data.get("resize") not in (None, "fit") and data.get("max_side") is not None:
            raise ValidationError("max_side is for resize fit", "max_side")
        if data.get("upscale") and data.get("resize") not in (None, "fit"):
            raise ValidationError("upscale is for resize fit", "upscale")


class ModelSchema(Schema):
    """One public model of the registry."""

    class Meta:
        unknown = RAISE

    task = fields.String(required=True, validate=validate.OneOf(TASKS))
    description = fields.String(load_default="")
    serving = fields.Nested(ServingSchema, required=True)
    # Left out: everything read from the signature.
    input = fields.Nested(InputSchema, required=True)
    # Output role -> signature output name; roles left out are found by their
    # conventional names (detection_boxes, probabilities, ...) in the signature.
    outputs = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    labels = fields.String(load_default=None)
    background_class = fields.Integer(load_default=None, validate=validate.Range(min=0))
    deadline_ms = fields.Integer(load_default=None, validate=validate.Range(min=1, max=600_000))
    # Detection: how the outputs are laid out; left out, read from the
    # signature (TF OD API names, or one [1, 4 + C, N] output: yolo).
    format = fields.String(load_default=None, validate=validate.OneOf(DETECTION_FORMATS))
    # YOLO: an objectness column before the class scores (v5; left out: read
    # from the output's shape and the labels), boxes in pixels or 0..1, NMS.
    yolo_objectness = fields.Boolean(load_default=None)
    yolo_boxes = fields.String(load_default="pixels", validate=validate.OneOf(YOLO_BOXES))
    nms_iou = fields.Float(load_default=DEFAULT_NMS_IOU, validate=validate.Range(min=0, max=1))
    # Classification: what turns the output into probabilities (none: it holds them).
    activation = fields.String(load_default="none", validate=validate.OneOf(ACTIVATIONS))

    @pre_load
    def _input_may_be_left_out(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict) and "input" not in data:
            return {**data, "input": {}}
        return data

    @validates_schema
    def _outputs_for_task(self, data: dict[str, Any], **_: Any) -> None:
        task = data["task"]
        formats = (data["format"],) if data.get("format") else TASK_FORMATS[task]
        known = {role for f in formats for kind in OUTPUT_ROLES[f].values() for role in kind}
        unknown = sorted(set(data["outputs"]) - known)
        if unknown:
            raise ValidationError(f"unknown output roles: {', '.join(unknown)}", "outputs")
        for key, default in _TASK_FIELDS[task]:
            if data.get(key, default) != default:
                other = "classification" if task == "detection" else "detection"
                raise ValidationError(f"only for task {other}", key)


# The fields (and their defaults) the *other* task's entries may not set.
_TASK_FIELDS: dict[str, tuple[tuple[str, object], ...]] = {
    "detection": (("activation", "none"),),
    "classification": (
        ("format", None),
        ("yolo_objectness", None),
        ("yolo_boxes", "pixels"),
        ("nms_iou", DEFAULT_NMS_IOU),
    ),
}


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
