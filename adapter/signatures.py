"""The registry checked against a model's live signature, and completed from it.

:func:`resolve` takes a registry entry and the SignatureDefs GetModelMetadata
returned. Fields the registry left out (input tensor name, encoding, dtype,
size; output names) are filled from the signature; fields it gave are
checked against it. Every disagreement is a message naming the model and the
registry field, which ``/readyz`` shows until the registry or model is fixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from adapter.exceptions import ConfigError
from adapter.registry import InputEntry, RegistryEntry, build_preprocessing
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
class Resolution:
    """A registry entry after the check: complete ``config`` when ``problems`` is empty."""

    config: RegistryEntry
    problems: tuple[str, ...] = ()
    input: TensorSpec | None = None
    outputs: Mapping[str, TensorSpec] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the model can be served as configured."""
        return not self.problems


class _Problems(list[str]):
    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model

    def add(self, registry_field: str, message: str) -> None:
        self.append(f"model {self.model}: {registry_field}: {message}")


def resolve(config: RegistryEntry, signatures: SignatureDefs) -> Resolution:
    """Check ``config`` against the live ``signatures`` and fill in what it left out."""
    problems = _Problems(config.name)
    name = config.serving.signature
    signature = signatures.get(name)
    if signature is None:
        public = {key: sig for key, sig in signatures.items() if not key.startswith("__")}
        problems.add(
            "serving.signature",
            f"the model has no signature {name!r} (it has: {_names(public)})",
        )
        return Resolution(config, tuple(problems))
    where = f"signature {name!r}"
    input_spec, tensor_spec = _resolve_input(config, signature, where, problems)
    outputs, output_specs = _resolve_outputs(config, signature, where, problems)
    if problems:
        return Resolution(config, tuple(problems), tensor_spec, output_specs)
    completed = dataclasses.replace(config, input=input_spec, outputs=outputs)
    return Resolution(completed, (), tensor_spec, output_specs)


def _names(items: Mapping[str, object]) -> str:
    return ", ".join(sorted(items)) or "none"


def _resolve_input(
    config: RegistryEntry,
    signature: model_metadata_pb2.SignatureDef,
    where: str,
    problems: _Problems,
) -> tuple[InputEntry, TensorSpec | None]:
    spec = config.input
    tensor = spec.tensor
    if tensor is None:
        if len(signature.inputs) != 1:
            problems.add(
                "input.tensor",
                f"not given, and {where} has {len(signature.inputs)} inputs "
                f"({_names(signature.inputs)}): name one",
            )
            return spec, None
        tensor = next(iter(signature.inputs))
    if tensor not in signature.inputs:
        problems.add(
            "input.tensor",
            f"{tensor!r} is not an input of {where} (inputs: {_names(signature.inputs)})",
        )
        return spec, None
    live = TensorSpec.from_info(signature.inputs[tensor])
    about = f"input {tensor!r} of {where} is {live.describe()}"
    encoding = "bytes" if live.dtype == DT.DT_STRING else "tensor"
    if spec.encoding is not None and spec.encoding != encoding:
        needs = "a string tensor" if spec.encoding == "bytes" else "a numeric tensor"
        problems.add("input.encoding", f"the registry says {spec.encoding} ({needs}), but {about}")
        return spec, live
    if encoding == "bytes":
        if spec.dtype is not None:
            problems.add("input.dtype", f"the registry says {spec.dtype}, but {about}")
            return spec, live
        return dataclasses.replace(spec, tensor=tensor, encoding="bytes"), live
    dtype = dtype_name(live.dtype)
    if dtype not in INPUT_DTYPES:
        problems.add("input.dtype", f"{about}; the adapter feeds {' or '.join(INPUT_DTYPES)}")
        return spec, live
    if spec.dtype is not None and spec.dtype != dtype:
        problems.add("input.dtype", f"the registry says {spec.dtype}, but {about}")
        return spec, live
    size = _image_size(spec, live, about, problems)
    if size is None:
        return spec, live
    try:
        preprocessing = build_preprocessing(config.name, size, dtype, spec.options)
    except ConfigError as exc:
        problems.append(str(exc))
        return spec, live
    completed = InputEntry(tensor, "tensor", dtype, size, spec.options, preprocessing)
    return completed, live


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
    config: RegistryEntry,
    signature: model_metadata_pb2.SignatureDef,
    where: str,
    problems: _Problems,
) -> tuple[dict[str, str], dict[str, TensorSpec]]:
    roles = OUTPUT_ROLES[config.task]
    conventional = CONVENTIONAL_OUTPUTS[config.task]
    available = signature.outputs
    outputs: dict[str, str] = {}
    for role in (*roles["required"], *roles["optional"]):
        name = config.outputs.get(role)
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
