"""``tfs-adapter inspect MODEL``: a served model's signatures, as saved_model_cli shows them.

Read over gRPC with GetModelMetadata from the running TF Serving (default
``ADAPTER_TFS_TARGET``), so it shows exactly what the adapter will see. MODEL
is a TF Serving model name or a public name from the registry. With
``--registry`` it prints a registry file for the model instead, every field
resolved as the service would, with a comment on where each came from.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from adapter.config import ConfigError, load_settings
from adapter.registry_draft import draft
from adapter.serving.codec import DT
from adapter.serving.grpc_client import GrpcClient
from adapter.serving.protos import model_metadata_pb2
from adapter.serving.servable import ModelRef, RpcFailure, SignatureDefs


def _shape(info: model_metadata_pb2.TensorInfo) -> str:
    if info.tensor_shape.unknown_rank:
        return "unknown_rank"
    dims = [str(dim.size) for dim in info.tensor_shape.dim]
    return f"({dims[0]})" if len(dims) == 1 else f"({', '.join(dims)})"


def _dtype(value: int) -> str:
    return DT.Name(value) if value in DT.values() else f"DataType({value})"


def _tensors(kind: str, tensors: dict[str, model_metadata_pb2.TensorInfo]) -> Iterator[str]:
    yield f"The given SavedModel SignatureDef contains the following {kind}(s):"
    for key in sorted(tensors):
        info = tensors[key]
        yield f"  {kind}s['{key}'] tensor_info:"
        yield f"      dtype: {_dtype(info.dtype)}"
        yield f"      shape: {_shape(info)}"
        yield f"      name: {info.name}"


def format_signature(signature: model_metadata_pb2.SignatureDef) -> list[str]:
    """One signature as ``saved_model_cli show --signature_def`` prints it."""
    return [
        *_tensors("input", dict(signature.inputs)),
        *_tensors("output", dict(signature.outputs)),
        f"Method name is: {signature.method_name}",
    ]


def format_signatures(signatures: SignatureDefs) -> str:
    """Every signature as ``saved_model_cli show --all`` prints its signature_def part."""
    lines = ["MetaGraphDef with tag-set: 'serve' contains the following SignatureDefs:"]
    for key in sorted(signatures):
        lines.append("")
        lines.append(f"signature_def['{key}']:")
        lines.extend(f"  {line}" for line in format_signature(signatures[key]))
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Print the model's signatures; exit 1 with a one-line reason if that fails."""
    parser = argparse.ArgumentParser(prog="tfs-adapter inspect", description=__doc__)
    parser.add_argument("model", help="TF Serving model name, or a public name in the registry")
    parser.add_argument("--target", help="gRPC target (default: ADAPTER_TFS_TARGET)")
    version = parser.add_mutually_exclusive_group()
    version.add_argument("--version", type=int, help="a version (default: the newest)")
    version.add_argument("--label", help="a version label")
    parser.add_argument("--signature_def", help="print only this signature")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument(
        "--registry", action="store_true", help="print a registry entry for the model instead"
    )
    parser.add_argument(
        "--task", choices=("detection", "classification"), help="with --registry (default: guessed)"
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"tfs-adapter inspect: {exc}", file=sys.stderr)
        return 1
    entry = settings.models.get(args.model)
    name = entry.serving.name if entry is not None else args.model
    target = args.target or (entry.backend.target if entry and entry.backend.transport == "grpc"
                             else settings.tfs_target)  # fmt: skip
    client = GrpcClient(target)
    ref = ModelRef(name, version=args.version, version_label=args.label)
    try:
        signatures = client.signature_defs(ref, timeout_s=args.timeout)
    except RpcFailure as failure:  # an operator's tool: the server's own words help here
        print(f"tfs-adapter inspect: {target}: {failure}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if args.registry:
        public = args.model if entry is not None else name.replace("_", "-")
        drafted = draft(
            public,
            name,
            signatures,
            signature=args.signature_def or "serving_default",
            task=args.task or (entry.task if entry is not None else None),
        )
        print(drafted.text, end="")
        return 1 if drafted.problems else 0
    if args.signature_def:
        if args.signature_def not in signatures:
            print(f"tfs-adapter inspect: {name} has no signature {args.signature_def!r}",
                  file=sys.stderr)  # fmt: skip
            return 1
        print("\n".join(format_signature(signatures[args.signature_def])))
    else:
        print(format_signatures(signatures), end="")
    return 0
