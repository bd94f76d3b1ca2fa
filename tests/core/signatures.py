"""SignatureDefs as GetModelMetadata returns them, built by hand to mirror the demo models
(and, for the exports, the real exporters they copy: Detection Zoo, Mask R-CNN, YOLO, Keras)."""

from __future__ import annotations

from adapter.serving.protos import model_metadata_pb2, tensor_pb2
from adapter.serving.servable import SignatureDefs

DT = tensor_pb2.DataType
Shape = tuple[int, ...] | None


def tensor(name: str, dtype: tensor_pb2.DataType, shape: Shape) -> model_metadata_pb2.TensorInfo:
    """A TensorInfo as TF writes it (``shape=None``: unknown rank)."""
    if shape is None:
        proto_shape = tensor_pb2.TensorShapeProto(unknown_rank=True)
    else:
        proto_shape = tensor_pb2.TensorShapeProto(
            dim=[tensor_pb2.TensorShapeProto.Dim(size=size) for size in shape]
        )
    return model_metadata_pb2.TensorInfo(
        name=f"serving_default_{name}:0", dtype=dtype, tensor_shape=proto_shape
    )


def signatures(
    inputs: dict[str, tuple[tensor_pb2.DataType, Shape]],
    outputs: dict[str, tuple[tensor_pb2.DataType, Shape]],
    name: str = "serving_default",
) -> SignatureDefs:
    """A model's SignatureDefs: ``name`` and the ``__saved_model_init_op`` every SavedModel has."""
    signature = model_metadata_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    for key, (dtype, shape) in inputs.items():
        signature.inputs[key].CopyFrom(tensor(key, dtype, shape))
    for key, (dtype, shape) in outputs.items():
        signature.outputs[key].CopyFrom(tensor(key, dtype, shape))
    init = model_metadata_pb2.SignatureDef()
    init.outputs["__saved_model_init_op"].CopyFrom(tensor("NoOp", DT.DT_INVALID, None))
    return {name: signature, "__saved_model_init_op": init}


DETECTOR_OUTPUTS: dict[str, tuple[tensor_pb2.DataType, Shape]] = {
    "detection_boxes": (DT.DT_FLOAT, (-1, 100, 4)),
    "detection_classes": (DT.DT_FLOAT, (-1, 100)),
    "detection_scores": (DT.DT_FLOAT, (-1, 100)),
    "num_detections": (DT.DT_FLOAT, (-1,)),
}
CLASSIFIER_OUTPUTS: dict[str, tuple[tensor_pb2.DataType, Shape]] = {
    "classes": (DT.DT_INT64, (-1,)),
    "probabilities": (DT.DT_FLOAT, (-1, 11)),
}
DETECTOR = signatures({"input_tensor": (DT.DT_UINT8, (-1, -1, -1, 3))}, DETECTOR_OUTPUTS)
CLASSIFIER = signatures({"images": (DT.DT_FLOAT, (-1, 32, 32, 3))}, CLASSIFIER_OUTPUTS)
BYTES_CLASSIFIER = signatures({"image_bytes": (DT.DT_STRING, (-1,))}, CLASSIFIER_OUTPUTS)

ZOO_OUTPUTS: dict[str, tuple[tensor_pb2.DataType, Shape]] = {
    "detection_boxes": (DT.DT_FLOAT, (1, 100, 4)),
    "detection_classes": (DT.DT_FLOAT, (1, 100)),
    "detection_scores": (DT.DT_FLOAT, (1, 100)),
    "num_detections": (DT.DT_FLOAT, (1,)),
    "detection_multiclass_scores": (DT.DT_FLOAT, (1, 100, 11)),
    "detection_anchor_indices": (DT.DT_FLOAT, (1, 100)),
    "detection_features": (DT.DT_FLOAT, (1, 100, 784)),
    "raw_detection_boxes": (DT.DT_FLOAT, (1, 1917, 4)),
    "raw_detection_scores": (DT.DT_FLOAT, (1, 1917, 11)),
}
ZOO_INPUT: dict[str, tuple[tensor_pb2.DataType, Shape]] = {
    "input_tensor": (DT.DT_UINT8, (1, -1, -1, 3))
}
ZOO_DETECTOR = signatures(ZOO_INPUT, ZOO_OUTPUTS)
MASKS_DETECTOR = signatures(
    ZOO_INPUT, {**ZOO_OUTPUTS, "detection_masks": (DT.DT_FLOAT, (1, 100, 28, 28))}
)
YOLO_DETECTOR = signatures(
    {"images": (DT.DT_FLOAT, (1, 640, 640, 3))}, {"output_0": (DT.DT_FLOAT, (1, 14, 8400))}
)
KERAS_INPUT: dict[str, tuple[tensor_pb2.DataType, Shape]] = {
    "keras_tensor": (DT.DT_FLOAT, (-1, 32, 32, 3))
}
KERAS_CLASSIFIER = signatures(KERAS_INPUT, {"output_0": (DT.DT_FLOAT, (-1, 10))})
ATTRIBUTES_CLASSIFIER = signatures(KERAS_INPUT, {"output_0": (DT.DT_FLOAT, (-1, 13))})
