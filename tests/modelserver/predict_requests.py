"""Building PredictRequests with TF Serving's own protos, for the model server's tests."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2


def request(
    name: str = "half_plus_two", signature: str = "", **inputs: np.ndarray | tensor_pb2.TensorProto
) -> predict_pb2.PredictRequest:
    """A PredictRequest for ``name``; numpy inputs are encoded by tf.make_tensor_proto."""
    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    if signature:
        req.model_spec.signature_name = signature
    for alias, value in inputs.items():
        proto = value if isinstance(value, tensor_pb2.TensorProto) else tf.make_tensor_proto(value)
        req.inputs[alias].CopyFrom(proto)
    return req
