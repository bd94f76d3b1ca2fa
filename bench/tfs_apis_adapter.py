"""A minimal tutorial-style adapter on ``tensorflow_serving.apis``, for ``bench/coldstart.py``.

What a typical blog-post adapter does, and nothing more: ``POST
/v1/models/digits/detect`` with a multipart ``image`` field; Pillow decodes it,
letterboxes it to 320x320 uint8 (centred, padded with 255, as the demo
registry's ``digits`` model wants), ``tf.make_tensor_proto`` fills a
``tensorflow_serving.apis.predict_pb2.PredictRequest``, a
``PredictionServiceStub`` calls ``Predict`` on ``ADAPTER_TFS_TARGET`` and the
raw output tensors come back as JSON lists. The gRPC channel is made on the
first request, after gunicorn forks the worker.

Serve it as the adapter is served::

    python -m gunicorn -c python:adapter.gunicorn_conf --workers 1 \
        'bench.tfs_apis_adapter:create_app()'
"""

from __future__ import annotations

import io
import os
import threading
from typing import Any

import flask
import grpc
import numpy as np
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

MODEL = "digit_detector"
SIGNATURE = "serving_default"
INPUT = "input_tensor"
SIZE = 320
PAD = 255
TIMEOUT_S = 5.0


def letterbox(image: Image.Image, size: int = SIZE) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Scale to fit ``size`` x ``size``, centre, pad with ``PAD``; uint8 HWC RGB."""
    image = image.convert("RGB")
    scale = min(size / image.width, size / image.height)
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    canvas = Image.new("RGB", (size, size), (PAD, PAD, PAD))
    offset = ((size - width) // 2, (size - height) // 2)
    canvas.paste(image.resize((width, height), Image.BILINEAR), offset)
    return np.asarray(canvas, dtype=np.uint8)


def create_app() -> flask.Flask:
    """The Flask app; one lazily made channel and stub per worker process."""
    app = flask.Flask(__name__)
    target = os.environ.get("ADAPTER_TFS_TARGET", "localhost:8500")
    lock = threading.Lock()
    stubs: list[prediction_service_pb2_grpc.PredictionServiceStub] = []

    def stub() -> prediction_service_pb2_grpc.PredictionServiceStub:
        with lock:
            if not stubs:
                channel = grpc.insecure_channel(target)
                stubs.append(prediction_service_pb2_grpc.PredictionServiceStub(channel))
            return stubs[0]

    @app.post("/v1/models/digits/detect")
    def detect() -> Any:
        upload = flask.request.files.get("image")
        if upload is None:
            return {"error": "no image"}, 400
        pixels = letterbox(Image.open(io.BytesIO(upload.read())))
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.model_spec.signature_name = SIGNATURE
        request.inputs[INPUT].CopyFrom(tf.make_tensor_proto(pixels[np.newaxis]))
        response = stub().Predict(request, timeout=TIMEOUT_S)
        return {name: tf.make_ndarray(proto).tolist() for name, proto in response.outputs.items()}

    return app
