"""A registry entry drafted from a live signature: ``tfs-adapter inspect MODEL --registry``.

The entry is resolved exactly as the service will resolve it (task and
``serving.name`` only, everything else read from the signature), then
written out with every field the adapter settled on, each with a comment
saying where it came from, so an operator can paste it and edit what the
signature could not say (the labels, above all).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from adapter.imaging import Limits
from adapter.registry import RegistryEntry, parse_registry
from adapter.resolution import (
    BytesInput,
    Misconfigured,
    ResolvedModel,
    TensorSpec,
    resolve,
)
from adapter.schemas.registry import CONVENTIONAL_OUTPUTS
from adapter.serving.protos import model_metadata_pb2
from adapter.serving.servable import SignatureDefs

COMMENT_COLUMN = 36


@dataclass(frozen=True)
class Draft:
    """The entry's YAML text, and the problems when the signature does not say enough."""

    text: str
    problems: tuple[str, ...] = ()


def guess_task(signature: model_metadata_pb2.SignatureDef) -> tuple[str, str] | None:
    """``(task, why)`` from the outputs, or None when they do not tell."""
    outputs = {name: TensorSpec.from_info(info) for name, info in signature.outputs.items()}
    if set(CONVENTIONAL_OUTPUTS["tf_od_api"].values()) & set(outputs):
        return "detection", "TF Object Detection API output names"
    ranks = {name: len(spec.shape) for name, spec in outputs.items() if spec.shape is not None}
    if len(outputs) == 1 and list(ranks.values()) == [3]:
        (spec,) = outputs.values()
        return "detection", f"the one output is {spec.describe()}: a YOLO head"
    if 2 in ranks.values():
        return "classification", "an output of one score per class"
    return None


def _line(key: str, value: str, comment: str = "", indent: int = 4) -> str:
    text = f"{' ' * indent}{key}: {value}"
    return f"{text.ljust(COMMENT_COLUMN - 1)} # {comment}" if comment else text


def _entry(name: str, task: str, servable: str, signature: str) -> RegistryEntry:
    serving: dict[str, str] = {"name": servable, "signature": signature}
    raw = {"models": {name: {"task": task, "serving": serving}}}
    return parse_registry(raw, Path.cwd())[name]


def draft(
    name: str,
    servable: str,
    signatures: SignatureDefs,
    *,
    signature: str = "serving_default",
    task: str | None = None,
) -> Draft:
    """The registry entry (YAML, under ``models:``) for ``servable`` as public model ``name``."""
    header = f"# Drafted from {servable!r}, signature {signature!r}: edit the TODOs."
    live = signatures.get(signature)
    guessed = None if task is not None or live is None else guess_task(live)
    if task is None and guessed is None:
        problem = "task: the outputs do not tell detection from classification: give --task"
        return Draft(_file(header, [f"{name}:", f"  # {problem}"]), (problem,))
    task = task or guessed[0]  # type: ignore[index]
    resolved = resolve(_entry(name, task, servable, signature), signatures, Limits())
    lines = [header, f"{name}:", _line("task", task, guessed[1] if guessed else "", 2)]
    lines.append(_line("serving", f"{{name: {servable}, signature: {signature}}}", "", 2))
    if isinstance(resolved, Misconfigured):
        lines += [f"  # {problem}" for problem in resolved.problems]
        return Draft(_file(lines[0], lines[1:]), resolved.problems)
    lines += _body(resolved)
    return Draft(_file(lines[0], lines[1:]))


def _file(header: str, entry: list[str]) -> str:
    """A whole registry file (``ADAPTER_MODELS``) holding the one entry."""
    return "\n".join([header, "models:", *(f"  {line}" for line in entry)]) + "\n"


def _body(model: ResolvedModel) -> Iterator[str]:
    why = {guess.field: guess.why for guess in model.guesses}
    yield "  input:"
    spec = model.input.spec.describe()
    yield _line("tensor", model.input.tensor, f"the only input, {spec}")
    if isinstance(model.input, BytesInput):
        yield _line("encoding", "bytes", "a string input: the file's bytes, decoded in the graph")
    else:
        pre = model.input.preprocessing
        yield _line("dtype", pre.dtype, "the input's dtype")
        if pre.resize == "fit":
            yield _line("resize", "fit", "any height and width: each image at its own size")
            yield _line(
                "max_side", str(pre.max_side), "the longest side sent; raise for small objects"
            )
        else:
            size = f"[{pre.size[0]}, {pre.size[1]}]"
            yield _line("size", size, "[width, height] of the input's shape")
            how = "keeps the aspect, pads" if pre.resize == "letterbox" else "the adapter's default"
            yield _line("resize", pre.resize, how)
            if model.format == "yolo":
                yield _line("pad_value", str(pre.pad_value), "ultralytics' letterbox grey")
        if pre.scale is not None:
            yield _line("scale", f"[{pre.scale!r}]", "0..255 to 0..1, as YOLO exports take")
    yield "  outputs:"
    conventional = CONVENTIONAL_OUTPUTS[model.format]
    for role, output in model.outputs.items():
        shape = model.output_specs[output].describe()
        if f"outputs.{role}" in why:
            note = why[f"outputs.{role}"]
        elif conventional.get(role) == output:
            note = f"the conventional name, {shape}"
        else:
            note = shape
        yield _line(role, output, note)
    yield from _format_lines(model, why)
    yield _labels(model)


def _format_lines(model: ResolvedModel, why: Mapping[str, str]) -> Iterator[str]:
    if model.entry.task == "classification":
        yield _line(
            "activation",
            "none",
            "TODO: softmax if the output holds logits, sigmoid if multi-label",
            2,
        )
        return
    yield _line("format", model.format, why.get("format", "TF Object Detection API outputs"), 2)
    if model.head is not None:
        objectness = "true" if model.head.objectness else "false"
        yield _line("yolo_objectness", objectness, why.get("yolo_objectness", ""), 2)
        yield _line("yolo_boxes", "pixels", "TODO: normalized if the boxes are in 0..1", 2)
        yield _line("nms_iou", f"{model.entry.nms_iou:g}", "class-aware NMS overlap", 2)


def _labels(model: ResolvedModel) -> str:
    count = None
    if model.head is not None:
        count = model.head.classes
    elif "probabilities" in model.outputs:
        shape = model.output_specs[model.outputs["probabilities"]].shape
        count = shape[-1] if shape and shape[-1] > 0 else None
    names = f"{count} class names" if count else "the class names"
    ids = "line 0: the background" if model.format == "tf_od_api" else "line N: class N"
    return _line(
        "labels",
        "labels.txt",
        f"TODO: {names}, one per line ({ids}), or a label_map.pbtxt / metadata.yaml",
        2,
    )
