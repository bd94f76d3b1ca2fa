"""gRPC client for TF Serving's PredictionService and ModelService.

Uses the adapter's own wire-compatible messages on TF Serving's real method
paths, so nothing here imports TensorFlow. The channel is created lazily, in
the process that first uses it (after gunicorn forks its workers), with the
options of :mod:`adapter.serving.channel`; every call carries a deadline.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import grpc
import numpy.typing as npt
from google.protobuf.message import Message

from adapter import tracing
from adapter.serving.channel import ChannelSettings, channel_target
from adapter.serving.codec import (
    TensorDecodeError,
    strings_to_tensor_proto,
    to_ndarray,
    to_tensor_proto,
)
from adapter.serving.protos import (
    model_metadata_pb2,
    model_status_pb2,
    predict_pb2,
    tensor_pb2,
)
from adapter.serving.servable import (
    ModelRef,
    Prediction,
    RpcFailure,
    SignatureDefs,
    VersionStatus,
)

log = logging.getLogger(__name__)

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
METADATA_METHOD = "/tensorflow.serving.PredictionService/GetModelMetadata"
STATUS_METHOD = "/tensorflow.serving.ModelService/GetModelStatus"

ResponseT = TypeVar("ResponseT", bound=Message)


def encode_input(array: npt.NDArray[Any]) -> tensor_pb2.TensorProto:
    """A numeric array as ``tensor_content``; an object array of bytes as DT_STRING."""
    if array.dtype == object:
        return strings_to_tensor_proto([bytes(value) for value in array.reshape(-1)])
    return to_tensor_proto(array)


def build_predict_request(
    model: ModelRef, inputs: Mapping[str, npt.NDArray[Any]], output_filter: Sequence[str] = ()
) -> predict_pb2.PredictRequest:
    """The PredictRequest for ``inputs`` (each tensor encoded once, no copies of the message)."""
    request = predict_pb2.PredictRequest(model_spec=model.to_spec(), output_filter=output_filter)
    for name, array in inputs.items():
        request.inputs[name].CopyFrom(encode_input(array))
    return request


class GrpcClient:
    """Calls one TF Serving target over gRPC; safe to share between threads.

    ``target`` is ``host:port``, ``dns:///host:port`` or a comma list of
    addresses (see :func:`adapter.serving.channel.channel_target`).
    """

    def __init__(self, target: str, settings: ChannelSettings | None = None) -> None:
        self.target = target
        self._settings = settings or ChannelSettings()
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._pid = 0

    @property
    def settings(self) -> ChannelSettings:
        """The options the next channel is made with."""
        return self._settings

    def set_message_limits(self, send_bytes: int, receive_bytes: int) -> None:
        """Use these message size limits from now on; a change means a new channel on next use."""
        with self._lock:
            settings = dataclasses.replace(
                self._settings, max_send_bytes=send_bytes, max_receive_bytes=receive_bytes
            )
            if settings != self._settings:
                self._settings = settings
                self._channel = None  # calls in flight keep the old one until they finish

    def _channel_here(self) -> grpc.Channel:
        # A channel must never cross a fork: make one per process, on first use.
        with self._lock:
            if self._channel is None or self._pid != os.getpid():
                uri = channel_target(self.target)
                options = self._settings.options()
                tls = self._settings.tls
                self._channel = (
                    grpc.secure_channel(uri, tls.credentials(), options=options)
                    if tls is not None
                    else grpc.insecure_channel(uri, options=options)
                )
                self._pid = os.getpid()
            return self._channel

    def close(self) -> None:
        """Close this process's channel; the next call opens a new one."""
        with self._lock:
            if self._channel is not None and self._pid == os.getpid():
                self._channel.close()
            self._channel = None

    def _call(
        self,
        method: str,
        request: Message,
        parse: Callable[[bytes], ResponseT],
        timeout_s: float,
    ) -> ResponseT:
        try:
            channel = self._channel_here()
        except OSError as exc:  # a name in a comma list did not resolve
            raise RpcFailure(grpc.StatusCode.UNAVAILABLE, f"cannot resolve: {exc}") from None
        stub: grpc.UnaryUnaryMultiCallable[Message, ResponseT] = channel.unary_unary(
            method, request_serializer=lambda m: m.SerializeToString(), response_deserializer=parse
        )
        try:
            response: ResponseT = stub(
                request, timeout=max(timeout_s, 0.001), metadata=tracing.outgoing() or None
            )
        except grpc.RpcError as exc:
            raise failure_from(exc) from None
        return response

    def predict(
        self,
        model: ModelRef,
        inputs: Mapping[str, npt.NDArray[Any]],
        *,
        output_filter: Sequence[str] = (),
        timeout_s: float,
    ) -> Prediction:
        """Run ``Predict`` and decode every output tensor."""
        request = build_predict_request(model, inputs, output_filter)
        response = self._call(
            PREDICT_METHOD, request, predict_pb2.PredictResponse.FromString, timeout_s
        )
        try:
            outputs = {name: to_ndarray(tensor) for name, tensor in response.outputs.items()}
        except TensorDecodeError as exc:
            raise RpcFailure(grpc.StatusCode.DATA_LOSS, str(exc), local=True) from None
        spec = response.model_spec
        version = spec.version.value if spec.HasField("version") else None
        return Prediction(outputs=outputs, model_version=version)

    def model_status(self, model: ModelRef, *, timeout_s: float) -> list[VersionStatus]:
        """Run ``GetModelStatus`` for the model's configured version (or all its versions)."""
        request = model_status_pb2.GetModelStatusRequest(
            model_spec=model.to_spec(with_signature=False)
        )
        response = self._call(
            STATUS_METHOD, request, model_status_pb2.GetModelStatusResponse.FromString, timeout_s
        )
        state_name = model_status_pb2.ModelVersionStatus.State.Name
        return [
            VersionStatus(
                version=status.version,
                state=state_name(status.state),
                error_code=status.status.error_code,
                error_message=status.status.error_message,
            )
            for status in response.model_version_status
        ]

    def signature_defs(self, model: ModelRef, *, timeout_s: float) -> SignatureDefs:
        """Run ``GetModelMetadata`` and return the model's signature definitions."""
        request = model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model.to_spec(with_signature=False), metadata_field=["signature_def"]
        )
        response = self._call(
            METADATA_METHOD,
            request,
            model_metadata_pb2.GetModelMetadataResponse.FromString,
            timeout_s,
        )
        # The Any's type_url names tensorflow.serving.SignatureDefMap; our
        # wire-compatible message reads the same bytes.
        packed = response.metadata["signature_def"].value
        return dict(model_metadata_pb2.SignatureDefMap.FromString(packed).signature_def)


# What gRPC says when a message is over a size limit (ours or the server's):
# retrying can't help, and it says nothing about the server's health.
_LOCAL_LIMIT_MARKERS = ("larger than max", "message too large")


def failure_from(exc: grpc.RpcError) -> RpcFailure:
    """The :class:`RpcFailure` for a gRPC error (``local`` for a message over a size limit)."""
    if not isinstance(exc, grpc.Call):
        return RpcFailure(grpc.StatusCode.UNKNOWN, str(exc))
    code, details = exc.code(), exc.details() or ""
    local = code is grpc.StatusCode.RESOURCE_EXHAUSTED and any(
        marker in details.lower() for marker in _LOCAL_LIMIT_MARKERS
    )
    return RpcFailure(code, details, local=local)
