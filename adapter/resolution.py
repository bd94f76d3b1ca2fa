"""A registry entry checked against the model's live signature, and completed from it.

:func:`resolve` takes a :class:`~adapter.registry.RegistryEntry` and the
SignatureDefs GetModelMetadata returned, and gives a :class:`ResolvedModel`
(every field known: the pipeline never checks for a missing one) or a
:class:`Misconfigured` list of problems. Fields the registry left out (input
tensor name, encoding, dtype, size; output names) are filled from the
signature; fields it gave are checked against it. Every disagreement is a
message naming the model and the registry field, which ``/readyz`` shows until
the registry or model is fixed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from adapter import imaging
from adapter.exceptions import ConfigError
from adapter.mapping.labels import LabelMap
from adapter.postprocess import YoloHead, YoloLayout
from adapter.registry import (
    BackendAddress,
    InputEntry,
    RegistryEntry,
    build_preprocessing,
    input_options,
)
from adapter.schemas.registry import (
    CONVENTIONAL_OUTPUTS,
    DEFAULT_MAX_SIDE,
    INPUT_DTYPES,
    OUTPUT_ROLES,
)
from adapter.serving.codec import dtype_name
from adapter.serving.protos import model_metadata_pb2, tensor_pb2
from adapter.serving.servable import SignatureDefs

DT = tensor_pb2.DataType


@dataclass(frozen=True)
class TensorSpec:
    """A signature tensor's dtype and shape (-1 for an unknown dimension; None: unknown rank)."""

    dtype: tensor_pb2.DataType
    shape: tuple[int, ...] | None

    @classmethod
    def from_info(cls, info: model_metadata_pb2.TensorInfo) -> TensorSpec:
        """From a SignatureDef's TensorInfo."""
        if info.tensor_shape.unknown_rank:
            return cls(info.dtype, None)
        return cls(info.dtype, tuple(int(dim.size) for dim in info.tensor_shape.dim))

    def describe(self) -> str:
        """``uint8 (-1, 320, 320, 3)``, as saved_model_cli would print it."""
        shape = "unknown rank" if self.shape is None else str(self.shape).replace(",)", ")")
        return f"{dtype_name(self.dtype)} {shape}"


@dataclass(frozen=True)
class TensorInput:
    """The model takes a decoded, resized image tensor, made by ``preprocessor``."""

    tensor: str
    spec: TensorSpec
    preprocessor: imaging.Preprocessor

    @property
    def preprocessing(self) -> imaging.Preprocessing:
        """The size, fit, channels, layout, dtype and normalization of the tensor."""
        return self.preprocessor.preprocessing


@dataclass(frozen=True)
class BytesInput:
    """The model takes the original file as a DT_STRING tensor and decodes it itself."""

    tensor: str
    spec: TensorSpec


ModelInput = TensorInput | BytesInput


@dataclass(frozen=True)
class Guess:
    """A registry field the entry left out and resolution read from the signature."""

    field: str
    value: object
    why: str


@dataclass(frozen=True)
class ResolvedModel:
    """A registry entry completed and checked against the live signature: servable as is.

    ``outputs`` maps every output role the format reads (``boxes``, ``scores``,
    ``predictions``, ``probabilities``, ...) to its signature output;
    ``output_specs`` gives each of those outputs' dtype and shape, by output
    name. ``format`` is ``tf_od_api`` or ``yolo`` for detection,
    ``classification`` otherwise; ``head`` is the compiled YOLO head.
    ``per_image``: one image per Predict (the signature fixes a batch of 1, or
    each image is sent at its own size). ``guesses`` are the fields read
    from the signature, for ``inspect --registry`` and ``GET /v1/models``.
    """

    entry: RegistryEntry
    input: ModelInput
    outputs: Mapping[str, str]
    output_specs: Mapping[str, TensorSpec]
    format: str = "tf_od_api"
    head: YoloHead | None = None
    per_image: bool = False
    guesses: tuple[Guess, ...] = ()

    @property
    def name(self) -> str:
        """The public model name."""
        return self.entry.name

    @property
    def labels(self) -> LabelMap:
        """Class id -> label name."""
        return self.entry.labels

    @property
    def backend(self) -> BackendAddress:
        """Where the model's TF Serving is."""
        return self.entry.backend


@dataclass(frozen=True)
class Misconfigured:
    """The registry entry and the live signature disagree; each problem names the field."""

    problems: tuple[str, ...]


Resolution = ResolvedModel | Misconfigured


class _Problems(list[str]):
    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model
        self.guesses: list[Guess] = []

    def add(self, registry_field: str, message: str) -> None:
        self.append(f"model {self.model}: {registry_field}: {message}")

    def guess(self, registry_field: str, value: object, why: str) -> None:
        self.guesses.append(Guess(registry_field, value, why))


def resolve(entry: RegistryEntry, signatures: SignatureDefs, limits: imaging.Limits) -> Resolution:
    """Check ``entry`` against the live ``signatures`` and fill in what it left out.

    A tensor input's preprocessor is compiled here, once, with ``limits``.
    """
    problems = _Problems(entry.name)
    name = entry.serving.signature
    signature = signatures.get(name)
    if signature is None:
        public = {key: sig for key, sig in signatures.items() if not key.startswith("__")}
        problems.add(
            "serving.signature",
            f"the model has no signature {name!r} (it has: {_names(public)})",
        )
        return Misconfigured(tuple(problems))
    where = f"signature {name!r}"
    output_format = _format(entry, signature, problems)
    resolved_input = _resolve_input(entry, signature, where, problems, limits, output_format)
    outputs, output_specs = _resolve_outputs(entry, signature, where, problems, output_format)
    head = None
    if output_format == "yolo" and "predictions" in outputs:
        head = _yolo_head(entry, outputs["predictions"], output_specs, problems)
    if problems or resolved_input is None or (output_format == "yolo" and head is None):
        return Misconfigured(tuple(problems))
    model_input, per_image = resolved_input
    return ResolvedModel(
        entry,
        model_input,
        outputs,
        output_specs,
        format=output_format,
        head=head,
        per_image=per_image,
        guesses=tuple(problems.guesses),
    )


def _names(items: Mapping[str, object]) -> str:
    return ", ".join(sorted(items)) or "none"


def _format(
    entry: RegistryEntry, signature: model_metadata_pb2.SignatureDef, problems: _Problems
) -> str:
    """``classification``, or the detection format: the registry's, else read from the outputs."""
    if entry.task == "classification":
        return "classification"
    if entry.format is not None:
        return entry.format
    if "predictions" in entry.outputs:
        return "yolo"
    tf_od_names = set(CONVENTIONAL_OUTPUTS["tf_od_api"].values())
    if tf_od_names & set(signature.outputs) or set(entry.outputs) & {"boxes", "classes", "scores"}:
        return "tf_od_api"
    only = [TensorSpec.from_info(info) for info in signature.outputs.values()]
    if len(only) == 1 and only[0].shape is not None and len(only[0].shape) == 3:
        problems.guess("format", "yolo", f"the one output is {only[0].describe()}")
        return "yolo"
    return "tf_od_api"


def _batch_of_one(live: TensorSpec) -> bool:
    """Whether the signature fixes its batch dimension at 1 (one image per Predict)."""
    return live.shape is not None and len(live.shape) > 0 and live.shape[0] == 1


def _resolve_input(
    entry: RegistryEntry,
    signature: model_metadata_pb2.SignatureDef,
    where: str,
    problems: _Problems,
    limits: imaging.Limits,
    output_format: str,
) -> tuple[ModelInput, bool] | None:
    """The model input and whether images go one per Predict."""
    spec = entry.input
    tensor = spec.tensor
    if tensor is None:
        if len(signature.inputs) != 1:
            problems.add(
                "input.tensor",
                f"not given, and {where} has {len(signature.inputs)} inputs "
                f"({_names(signature.inputs)}): name one",
            )
            return None
        tensor = next(iter(signature.inputs))
    if tensor not in signature.inputs:
        problems.add(
            "input.tensor",
            f"{tensor!r} is not an input of {where} (inputs: {_names(signature.inputs)})",
        )
        return None
    live = TensorSpec.from_info(signature.inputs[tensor])
    about = f"input {tensor!r} of {where} is {live.describe()}"
    if live.shape is not None and live.shape and live.shape[0] > 1:
        problems.add("input.tensor", f"{about}: a fixed batch of {live.shape[0]} is not supported")
        return None
    encoding = "bytes" if live.dtype == DT.DT_STRING else "tensor"
    if spec.encoding is not None and spec.encoding != encoding:
        needs = "a string tensor" if spec.encoding == "bytes" else "a numeric tensor"
        problems.add("input.encoding", f"the registry says {spec.encoding} ({needs}), but {about}")
        return None
    if encoding == "bytes":
        if spec.dtype is not None:
            problems.add("input.dtype", f"the registry says {spec.dtype}, but {about}")
            return None
        return BytesInput(tensor, live), _batch_of_one(live)
    dtype = dtype_name(live.dtype)
    if dtype not in INPUT_DTYPES:
        problems.add("input.dtype", f"{about}; the adapter feeds {' or '.join(INPUT_DTYPES)}")
        return None
    if spec.dtype is not None and spec.dtype != dtype:
        problems.add("input.dtype", f"the registry says {spec.dtype}, but {about}")
        return None
    sized = _image_size(spec, live, about, problems)
    if sized is None:
        return None
    size, open_size = sized
    options = input_options(
        spec.options, open_size=open_size, yolo=output_format == "yolo", dtype=dtype
    )
    if spec.options["resize"] is None and options["resize"] == "fit":
        side = spec.max_side or DEFAULT_MAX_SIDE
        problems.guess("input.resize", "fit", f"{about}: each image at its own size")
        problems.guess("input.max_side", side, "the longest side sent")
    try:
        preprocessing = build_preprocessing(entry.name, size, dtype, options, spec.max_side)
    except ConfigError as exc:
        problems.append(str(exc))
        return None
    per_image = _batch_of_one(live) or not preprocessing.fixed_size
    return TensorInput(tensor, live, preprocessing.compile(limits)), per_image


def _image_size(
    spec: InputEntry, live: TensorSpec, about: str, problems: _Problems
) -> tuple[tuple[int, int] | None, bool] | None:
    """The (width, height) the signature takes, checked against the registry's size and
    color, and whether it is open (any height and width: ``resize: fit``)."""
    nchw = spec.options.get("layout") == "nchw"
    shape = live.shape
    if shape is not None and len(shape) != 4:
        problems.add("input.tensor", f"{about}; an image input has 4 dimensions")
        return None
    height, width, channels = (-1, -1, -1) if shape is None else (
        (shape[2], shape[3], shape[1]) if nchw else (shape[1], shape[2], shape[3])
    )  # fmt: skip
    color = spec.options.get("color", "rgb")
    wanted_channels = 1 if color == "gray" else 3
    if channels not in (-1, wanted_channels):
        problems.add(
            "input.color",
            f"{about}: {channels} channels, but color {color} gives {wanted_channels}",
        )
        return None
    resize = spec.options.get("resize")
    if resize == "fit":
        if width > 0 or height > 0:
            problems.add(
                "input.resize",
                f"fit sends each image at its own size, but {about}, which takes "
                f"[{width}, {height}]: leave resize out or choose another",
            )
            return None
        return None, True
    if spec.size is not None:
        given_w, given_h = spec.size
        if width not in (-1, given_w) or height not in (-1, given_h):
            problems.add(
                "input.size",
                f"the registry says [{given_w}, {given_h}], but {about}, "
                f"which takes [{width}, {height}]",
            )
            return None
        return spec.size, False
    if width < 0 and height < 0 and resize is None and shape is not None:
        return None, True
    if width < 0 or height < 0:
        problems.add(
            "input.size",
            f"not given, and {about}, which fixes no size: give input.size "
            "(or resize: fit to send each image at its own size)",
        )
        return None
    problems.guess("input.size", [width, height], f"{about}")
    return (width, height), False


def _resolve_outputs(
    entry: RegistryEntry,
    signature: model_metadata_pb2.SignatureDef,
    where: str,
    problems: _Problems,
    output_format: str,
) -> tuple[dict[str, str], dict[str, TensorSpec]]:
    roles = OUTPUT_ROLES[output_format]
    conventional = CONVENTIONAL_OUTPUTS[output_format]
    available = signature.outputs
    outputs: dict[str, str] = {}
    for role in (*roles["required"], *roles["optional"]):
        name = entry.outputs.get(role)
        if name is not None and name not in available:
            problems.add(
                f"outputs.{role}",
                f"{name!r} is not an output of {where} (outputs: {_names(available)})",
            )
        elif name is not None:
            outputs[role] = name
        elif role in conventional and conventional[role] in available:
            outputs[role] = conventional[role]
        elif role in roles["required"]:
            guessed = _only_output(role, available)
            if guessed is not None:
                outputs[role] = guessed
                spec = TensorSpec.from_info(available[guessed])
                problems.guess(f"outputs.{role}", guessed, f"the only candidate, {spec.describe()}")
                continue
            named = f"no output named {conventional[role]!r}" if role in conventional else ""
            problems.add(
                f"outputs.{role}",
                f"not given, and {where} has {named or 'several outputs'} "
                f"(outputs: {_names(available)}): name one, e.g. outputs: {{{role}: "
                f"{next(iter(sorted(available)), 'NAME')}}}"
                + (", or set format: yolo" if output_format == "tf_od_api" else ""),
            )
    specs = {name: TensorSpec.from_info(available[name]) for name in outputs.values()}
    return outputs, specs


_FLOATS = (DT.DT_FLOAT, DT.DT_HALF, DT.DT_DOUBLE, DT.DT_BFLOAT16)


def _only_output(role: str, available: Mapping[str, model_metadata_pb2.TensorInfo]) -> str | None:
    """The one output that can play ``role`` (a classifier's scores, a YOLO head), if one."""
    rank = {"probabilities": 2, "predictions": 3}.get(role)
    if rank is None:
        return None
    fits = [
        name
        for name, info in available.items()
        if info.dtype in _FLOATS
        and (info.tensor_shape.unknown_rank or len(info.tensor_shape.dim) == rank)
    ]
    return fits[0] if len(fits) == 1 else None


def _yolo_head(
    entry: RegistryEntry,
    output: str,
    specs: Mapping[str, TensorSpec],
    problems: _Problems,
) -> YoloHead | None:
    """The head's layout from the output's shape ``[1, 4 + C, N]`` or ``[1, N, 4 + C]``,
    the labels (C of them, when given) and ``yolo_objectness``."""
    spec = specs[output]
    about = f"output {output!r} is {spec.describe()}"
    if spec.shape is None or len(spec.shape) != 3 or spec.shape[0] not in (-1, 1):
        problems.add("outputs.predictions", f"{about}; a YOLO head is [1, 4 + classes, anchors]")
        return None
    first, second = spec.shape[1], spec.shape[2]
    classes = len(entry.labels) or None
    objectness = (entry.yolo_objectness,) if entry.yolo_objectness is not None else (False, True)
    options = [
        (layout, values, obj)
        for layout, values, other in (
            ("channels_first", first, second), ("anchors_first", second, first),
        )
        for obj in objectness
        if values > 4 + obj and (classes is None or values == 4 + obj + classes)
        and (other < 0 or other > values or classes is not None)
    ]  # fmt: skip
    if not options or (first < 0 and second < 0):
        counted = f"{classes} labels" if classes else "no labels"
        problems.add(
            "outputs.predictions",
            f"{about}: with {counted} it has no axis of 4 + classes values "
            "(5 + classes with yolo_objectness): check labels and yolo_objectness",
        )
        return None
    # Fewer values than anchors, and no objectness column unless it must be.
    layout, values, obj = sorted(options, key=lambda o: (o[2], o[1]))[0]
    if entry.yolo_objectness is None:
        problems.guess("yolo_objectness", obj, about)
    return YoloHead(
        layout=cast(YoloLayout, layout),
        classes=values - 4 - int(obj),
        objectness=obj,
        normalized=entry.yolo_boxes == "normalized",
    )
