"""Loading one SavedModel version: the callable signatures and the on-disk SignatureDefs.

The SignatureDefs come straight from ``saved_model.pb`` (the MetaGraphDef tagged
``serve``), so GetModelMetadata reports the real TensorInfo names, dtypes and
shapes, exactly as TF Serving does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from adapter.modelserver.status import ServingError

SERVE_TAGS = ("serve",)


@dataclass
class LoadedModel:
    """One loaded servable version: ``signatures`` to call, ``signature_defs`` to describe."""

    name: str
    version: int
    path: Path
    module: Any
    signatures: Mapping[str, Callable[..., Mapping[str, Any]]]
    signature_defs: Mapping[str, meta_graph_pb2.SignatureDef]


def read_saved_model(export_dir: Path) -> saved_model_pb2.SavedModel:
    """Parse ``saved_model.pb`` (or ``saved_model.pbtxt``); NOT_FOUND if neither exists."""
    binary, text = export_dir / "saved_model.pb", export_dir / "saved_model.pbtxt"
    proto = saved_model_pb2.SavedModel()
    if binary.is_file():
        proto.ParseFromString(binary.read_bytes())
    elif text.is_file():
        text_format.Parse(text.read_text(encoding="utf-8"), proto)
    else:
        raise ServingError(
            grpc.StatusCode.NOT_FOUND,
            "Could not find SavedModel .pb or .pbtxt at supplied export directory "
            f"path: {export_dir}",
        )
    return proto


def read_signature_defs(
    export_dir: Path, tags: tuple[str, ...] = SERVE_TAGS
) -> dict[str, meta_graph_pb2.SignatureDef]:
    """Return the signature_def map of the MetaGraphDef whose tag set equals ``tags``."""
    saved_model = read_saved_model(export_dir)
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == set(tags):
            return dict(meta_graph.signature_def)
    raise ServingError(
        grpc.StatusCode.NOT_FOUND,
        f"Could not find meta graph def matching supplied tags: {{ {' '.join(tags)} }}. "
        "To inspect available tag-sets in the SavedModel, please use the SavedModel "
        "CLI: `saved_model_cli`",
    )


def load(name: str, version: int, export_dir: Path) -> LoadedModel:
    """Load ``export_dir`` with tags ``serve``; raises on a missing or half-written model."""
    signature_defs = read_signature_defs(export_dir)
    module = tf.saved_model.load(str(export_dir), tags=list(SERVE_TAGS))
    signatures = dict(getattr(module, "signatures", {}) or {})
    return LoadedModel(
        name=name,
        version=version,
        path=export_dir,
        module=module,
        signatures=signatures,
        signature_defs=signature_defs,
    )
