"""The committed ``*_pb2.py`` files are what the committed ``.proto`` files compile to."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

grpc_tools = pytest.importorskip("grpc_tools.protoc")
from google.protobuf import descriptor_pb2  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
PROTOS = sorted((ROOT / "adapter" / "serving" / "protos").glob("*.proto"))


def test_generated_modules_match_their_proto_files(tmp_path: Path) -> None:
    assert PROTOS, "no .proto files found"
    descriptor_set = tmp_path / "set.pb"
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    args = [f"-I{ROOT}", f"-I{include}", f"--descriptor_set_out={descriptor_set}"]
    # protoc runs in its own process: in one with TensorFlow loaded it can crash.
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", *args, *(str(p) for p in PROTOS)], check=True
    )
    compiled = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    for fresh in compiled.file:
        _drop_json_names(fresh.message_type)  # protoc adds them to descriptor sets only
        module = importlib.import_module(
            fresh.name.removesuffix(".proto").replace("/", ".") + "_pb2"
        )
        committed = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(committed)
        assert committed == fresh, f"{fresh.name} changed: run `make protos`"


def _drop_json_names(messages: object) -> None:
    for message in messages:  # type: ignore[attr-defined]
        for field in message.field:
            field.ClearField("json_name")
        _drop_json_names(message.nested_type)
