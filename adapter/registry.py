"""The model registry (YAML): each public model name and how to feed and read it.

Read once at start (:func:`load_registry`) and validated by
:mod:`adapter.schemas.registry`. A :class:`RegistryEntry` is the entry *as
read*: fields the registry may leave to the model's signature (input tensor,
encoding, dtype, size; output names) are ``None`` or missing here, and
:mod:`adapter.resolution` completes them into a
:class:`~adapter.resolution.ResolvedModel` against the live signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml
from marshmallow import ValidationError

from adapter.exceptions import ConfigError
from adapter.imaging import DType, Preprocessing
from adapter.mapping.labels import LabelFileError, LabelMap
from adapter.schemas.registry import DEFAULT_MAX_SIDE, DEFAULT_NMS_IOU, REGISTRY_SCHEMA
from adapter.serving.channel import validate_target
from adapter.serving.servable import ModelRef

DEFAULT_TARGETS: Mapping[str, str] = {"grpc": "localhost:8500", "rest": "http://localhost:8501"}
"""The TF Serving target per transport when neither the registry nor the environment names one."""
DEFAULT_DEADLINE_S = 5.0
"""A model's deadline when neither the registry nor ``ADAPTER_DEADLINE_MS`` gives one."""


@dataclass(frozen=True)
class InputEntry:
    """The registry's ``input``: how an upload becomes the model's input tensor.

    ``tensor``, ``encoding``, ``dtype`` and ``size`` are None where the
    registry left them to the model's signature. ``options`` are the
    resize and normalization fields as :class:`~adapter.imaging.Preprocessing`
    keywords, ``resize`` and ``pad_value`` None where left to the model
    (:func:`input_options`); ``preprocessing`` is built (and so validated at
    start) when the registry gives both ``size`` and ``dtype``. ``max_side``
    bounds ``resize: fit`` (None: the default, 1024).
    """

    tensor: str | None = None
    encoding: str | None = None
    dtype: str | None = None
    size: tuple[int, int] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    preprocessing: Preprocessing | None = None
    max_side: int | None = None


@dataclass(frozen=True)
class BackendAddress:
    """Where a model's TF Serving is: ``grpc`` or ``rest``, and the target address."""

    transport: str
    target: str

    def __str__(self) -> str:
        return f"{self.transport} {self.target}"


@dataclass(frozen=True)
class RegistryEntry:
    """One public model as the registry gives it: task, servable, input, outputs, labels."""

    name: str
    task: str
    serving: ModelRef
    input: InputEntry
    outputs: Mapping[str, str]
    backend: BackendAddress = BackendAddress("grpc", DEFAULT_TARGETS["grpc"])
    labels: LabelMap = field(default_factory=LabelMap)
    background_class: int | None = None
    deadline_s: float = DEFAULT_DEADLINE_S
    description: str = ""
    allow_versions: tuple[int, ...] = ()
    allow_labels: tuple[str, ...] = ()
    format: str | None = None
    yolo_objectness: bool | None = None
    yolo_boxes: str = "pixels"
    nms_iou: float = DEFAULT_NMS_IOU
    activation: str = "none"

    @property
    def label_names(self) -> list[str]:
        """The labels a caller can see and filter by: named classes, the background left out."""
        return [
            name
            for class_id, name in enumerate(self.labels.names)
            if class_id != self.background_class and name
        ]


def check_target(where: str, target: str, *, rest: bool = False) -> None:
    """Raise ConfigError unless ``target`` is a usable gRPC (or REST base URL) target."""
    if rest:
        if not target.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: expected http://host:port or https://..., got {target!r}")
        return
    try:
        validate_target(target)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_registry(
    path: Path,
    *,
    default_deadline_s: float = DEFAULT_DEADLINE_S,
    targets: Mapping[str, str] | None = None,
) -> dict[str, RegistryEntry]:
    """Parse and validate a registry file; label paths are relative to it.

    ``targets`` gives the default target per transport (``grpc``, ``rest``;
    default :data:`DEFAULT_TARGETS`).
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read model registry {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"model registry {path} is not valid YAML: {exc}") from None
    return parse_registry(
        raw, path.parent, where=str(path), default_deadline_s=default_deadline_s, targets=targets
    )


def parse_registry(
    raw: object,
    base: Path,
    *,
    where: str = "",
    default_deadline_s: float = DEFAULT_DEADLINE_S,
    targets: Mapping[str, str] | None = None,
) -> dict[str, RegistryEntry]:
    """Validate a registry as read from YAML (``{"models": {...}}``); labels are relative
    to ``base``."""
    try:
        data = REGISTRY_SCHEMA.load(raw if isinstance(raw, dict) else {"models": raw})
    except ValidationError as exc:
        raise ConfigError(f"model registry {where} is invalid: {exc.messages}") from None
    defaults = {**DEFAULT_TARGETS, **(targets or {})}
    return {
        name: _entry(name, entry, base, default_deadline_s, defaults)
        for name, entry in data["models"].items()
    }


_PREPROCESSING_KEYS = (
    "resize",
    "upscale",
    "shorter_side",
    "filter",
    "pad_value",
    "color",
    "layout",
    "mean",
    "std",
    "scale",
    "offset",
    "background",
)


def preprocessing_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The registry's resize/normalization fields as :class:`Preprocessing` keywords."""
    options: dict[str, Any] = {key: spec[key] for key in _PREPROCESSING_KEYS}
    for key in ("mean", "std", "scale", "offset"):
        values = options[key]
        if values is not None:
            options[key] = values[0] if len(values) == 1 else tuple(values)
    if options["background"] is None:
        del options["background"]
    else:
        options["background"] = tuple(options["background"])
    return options


YOLO_PAD_VALUE = 114
"""The grey ultralytics pads its letterbox with."""


def input_options(
    options: Mapping[str, Any], *, open_size: bool, yolo: bool, dtype: str
) -> dict[str, Any]:
    """The registry's input options with what it left to the model filled in.

    ``resize``: ``fit`` when the signature leaves height and width open
    (``open_size``), ``letterbox`` for a YOLO head, else ``stretch``.
    ``pad_value``: 114 for YOLO, else 0. A YOLO head's float32 input takes
    ``0..1`` (``scale: 1/255``) unless the registry normalizes it otherwise.
    """
    completed = dict(options)
    if completed["resize"] is None:
        completed["resize"] = "fit" if open_size else "letterbox" if yolo else "stretch"
    if completed["pad_value"] is None:
        completed["pad_value"] = YOLO_PAD_VALUE if yolo else 0
    normalized = any(completed[key] is not None for key in ("mean", "std", "scale", "offset"))
    if yolo and dtype == "float32" and not normalized:
        completed["scale"] = 1 / 255
    return completed


def build_preprocessing(
    name: str,
    size: tuple[int, int] | None,
    dtype: str,
    options: Mapping[str, Any],
    max_side: int | None = None,
) -> Preprocessing:
    """A validated :class:`Preprocessing` (``options`` completed by :func:`input_options`);
    ConfigError naming the model otherwise. ``resize: fit`` takes ``max_side``, not ``size``."""
    if options["resize"] == "fit":
        side = max_side or DEFAULT_MAX_SIDE
        size = (side, side)
    if size is None:
        raise ConfigError(f"model {name}: input: no size")
    try:
        return Preprocessing(size, dtype=cast(DType, dtype), **options)
    except ValueError as exc:
        raise ConfigError(f"model {name}: input: {exc}") from None


def _input_entry(name: str, spec: dict[str, Any], *, yolo: bool) -> InputEntry:
    size = (spec["size"][0], spec["size"][1]) if spec["size"] is not None else None
    options = preprocessing_options(spec)
    encoding, dtype = spec["encoding"], spec["dtype"]
    preprocessing = None
    fit = options["resize"] == "fit"
    if encoding != "bytes" and (size is not None or fit) and dtype is not None:
        completed = input_options(options, open_size=fit, yolo=yolo, dtype=dtype)
        preprocessing = build_preprocessing(name, size, dtype, completed, spec["max_side"])
        encoding = "tensor"
    return InputEntry(
        tensor=spec["tensor"],
        encoding=encoding,
        dtype=dtype,
        size=size,
        options=options,
        preprocessing=preprocessing,
        max_side=spec["max_side"],
    )


def _labels(name: str, entry: dict[str, Any], base: Path) -> LabelMap:
    if not entry["labels"]:
        return LabelMap()
    label_path = base / entry["labels"]
    try:
        return LabelMap.from_file(label_path)
    except OSError as exc:
        raise ConfigError(
            f"model {name}: cannot read labels {label_path}: {exc.strerror}"
        ) from None
    except LabelFileError as exc:
        raise ConfigError(f"model {name}: labels {label_path} {exc}") from None


def _entry(
    name: str,
    entry: dict[str, Any],
    base: Path,
    default_deadline_s: float,
    targets: Mapping[str, str],
) -> RegistryEntry:
    serving = entry["serving"]
    transport = serving["transport"]
    target = serving["target"] or targets[transport]
    check_target(f"model {name}: serving.target", target, rest=transport == "rest")
    return RegistryEntry(
        name=name,
        task=entry["task"],
        serving=ModelRef(
            name=serving["name"],
            signature=serving["signature"],
            version=serving["version"],
            version_label=serving["version_label"],
        ),
        input=_input_entry(name, entry["input"], yolo=entry["format"] == "yolo"),
        outputs=dict(entry["outputs"]),
        backend=BackendAddress(transport, target),
        labels=_labels(name, entry, base),
        background_class=entry["background_class"],
        deadline_s=(entry["deadline_ms"] / 1000) if entry["deadline_ms"] else default_deadline_s,
        description=entry["description"],
        allow_versions=tuple(serving["allow_versions"]),
        allow_labels=tuple(serving["allow_labels"]),
        format=entry["format"],
        yolo_objectness=entry["yolo_objectness"],
        yolo_boxes=entry["yolo_boxes"],
        nms_iou=entry["nms_iou"],
        activation=entry["activation"],
    )
