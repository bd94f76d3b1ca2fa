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

from adapter import imaging
from adapter.exceptions import ConfigError
from adapter.mapping.labels import LabelMap
from adapter.registry import BackendAddress, InputEntry, RegistryEntry, build_preprocessing
from adapter.schemas.registry import CONVENTIONAL_OUTPUTS, INPUT_DTYPES, OUTPUT_ROLES
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
class ResolvedModel:
    """A registry entry completed and checked against the live signature: servable as is.

    ``outputs`` maps every output role the task reads (``boxes``, ``scores``,
    ``probabilities``, ...) to its signature output; ``output_specs`` gives
    each of those outputs' dtype and shape, by output name.
    """

    entry: RegistryEntry
    input: ModelInput
    outputs: Mapping[str, str]
    output_specs: Mapping[str, TensorSpec]

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

    def add(self, registry_field: str, message: str) -> None:
        self.append(f"model {self.model}: {registry_field}: {message}")


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
    model_input = _resolve_input(entry, signature, where, problems, limits)
    outputs, output_specs = _resolve_outputs(entry, signature, where, problems)
    if problems or model_input is None:
        return Misconfigured(tuple(problems))
    return ResolvedModel(entry, model_input, outputs, output_specs)


def _names(items: Mapping[str, object]) -> str:
    return ", ".join(sorted(items)) or "none"


def _resolve_input(
    entry: RegistryEntry,
    signature: model_metadata_pb2.SignatureDef,
    where: str,
    problems: _Problems,
    limits: imaging.Limits,
) -> ModelInput | None:
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
    encoding = "bytes" if live.dtype == DT.DT_STRING else "tensor"
    if spec.encoding is not None and spec.encoding != encoding:
        needs = "a string tensor" if spec.encoding == "bytes" else "a numeric tensor"
        problems.add("input.encoding", f"the registry says {spec.encoding} ({needs}), but {about}")
        return None
    if encoding == "bytes":
        if spec.dtype is not None:
            problems.add("input.dtype", f"the registry says {spec.dtype}, but {about}")
            return None
        return BytesInput(tensor, live)
    dtype = dtype_name(live.dtype)
    if dtype not in INPUT_DTYPES:
        problems.add("input.dtype", f"{about}; the adapter feeds {' or '.join(INPUT_DTYPES)}")
        return None
    if spec.dtype is not None and spec.dtype != dtype:
        problems.add("input.dtype", f"the registry says {spec.dtype}, but {about}")
        return None
    size = _image_size(spec, live, about, problems)
    if size is None:
        return None
    try:
        preprocessing = spec.preprocessing or build_preprocessing(
            entry.name, size, dtype, spec.options
        )
    except ConfigError as exc:
        problems.append(str(exc))
        return None
    return TensorInput(tensor, live, preprocessing.compile(limits))


def _image_size(
    spec: InputEntry, live: TensorSpec, about: str, problems: _Problems
) -> tuple[int, int] | None:
    """The (width, height) the signature takes, checked against the registry's size and color."""
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
    if spec.size is not None:
        given_w, given_h = spec.size
        if width not in (-1, given_w) or height not in (-1, given_h):
            problems.add(
                "input.size",
                f"the registry says [{given_w}, {given_h}], but {about}, "
                f"which takes [{width}, {height}]",
            )
            return None
        return spec.size
    if width < 0 or height < 0:
        problems.add("input.size", f"not given, and {about}, which fixes no size: give one")
        return None
    return width, height


def _resolve_outputs(
    entry: RegistryEntry,
    signature: model_metadata_pb2.SignatureDef,
    where: str,
    problems: _Problems,
) -> tuple[dict[str, str], dict[str, TensorSpec]]:
    roles = OUTPUT_ROLES[entry.task]
    conventional = CONVENTIONAL_OUTPUTS[entry.task]
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
        elif conventional[role] in available:
            outputs[role] = conventional[role]
        elif role in roles["required"]:
            problems.add(
                f"outputs.{role}",
                f"not given, and {where} has no output named {conventional[role]!r} "
                f"(outputs: {_names(available)})",
            )
    specs = {name: TensorSpec.from_info(available[name]) for name in outputs.values()}
    return outputs, specs
