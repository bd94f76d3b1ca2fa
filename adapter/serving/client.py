"""gRPC client for TF Serving's PredictionService and ModelService.

Uses the adapter's own wire-compatible messages on TF Serving's real method
paths, so nothing here imports TensorFlow. The channel is created lazily, in
the process that first uses it (after gunicorn forks its workers), and every
call carries a deadline.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import numpy.typing as npt
from google.protobuf.message import Message

from adapter import errors
from adapter.serving.codec import TensorDecodeError, to_ndarray
from adapter.serving.protos import (
    model_metadata_pb2,
    model_pb2,
    model_status_pb2,
    predict_pb2,
    tensor_pb2,
)

log = logging.getLogger(__name__)

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
METADATA_METHOD = "/tensorflow.serving.PredictionService/GetModelMetadata"
STATUS_METHOD = "/tensorflow.serving.ModelService/GetModelStatus"

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

ResponseT = TypeVar("ResponseT", bound=Message)


@dataclass(frozen=True)
class ModelRef:
    """Which servable to call: TF Serving model name, signature, version or label."""

    name: str
    signature: str = "serving_default"
    version: int | None = None
    version_label: str | None = None

    def to_spec(self, *, with_signature: bool = True) -> model_pb2.ModelSpec:
        """Return the ModelSpec message (signature left out where TF Serving ignores it)."""
        spec = model_pb2.ModelSpec(name=self.name)
        if with_signature:
            spec.signature_name = self.signature
        if self.version is not None:
            spec.version.value = self.version
        elif self.version_label:
            spec.version_label = self.version_label
        return spec


@dataclass(frozen=True)
class Prediction:
    """A Predict answer: decoded output arrays and the version that served it."""

    outputs: dict[str, npt.NDArray[Any]]
    model_version: int | None


@dataclass(frozen=True)
class VersionStatus:
    """One model version's state as GetModelStatus reports it (e.g. ``AVAILABLE``)."""

    version: int
    state: str
    error_code: int
    error_message: str

    @property
    def available(self) -> bool:
        """True when TF Serving can serve this version."""
        return self.state == "AVAILABLE"


class PredictClient:
    """Calls one TF Serving target over gRPC; safe to share between threads.

    ``target`` is anything gRPC resolves: ``host:port``, ``dns:///host:port``.
    ``max_message_bytes`` (default 64 MiB) replaces gRPC's 4 MB receive limit.
    """

    def __init__(self, target: str, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.target = target
        self._options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._pid = 0

    def _channel_here(self) -> grpc.Channel:
        # A channel must never cross a fork: make one per process, on first use.
        with self._lock:
            if self._channel is None or self._pid != os.getpid():
                self._channel = grpc.insecure_channel(self.target, options=self._options)
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
        *,
        timeout_s: float,
        model: ModelRef,
    ) -> ResponseT:
        stub: grpc.UnaryUnaryMultiCallable[Message, ResponseT] = self._channel_here().unary_unary(
            method, request_serializer=lambda m: m.SerializeToString(), response_deserializer=parse
        )
        try:
            response: ResponseT = stub(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise translate_rpc_error(exc, model) from None
        return response

    def predict(
        self,
        model: ModelRef,
        inputs: Mapping[str, tensor_pb2.TensorProto],
        *,
        output_filter: Sequence[str] = (),
        timeout_s: float,
    ) -> Prediction:
        """Run ``Predict`` and decode every output tensor."""
        request = predict_pb2.PredictRequest(
            model_spec=model.to_spec(), output_filter=list(output_filter)
        )
        for name, tensor in inputs.items():
            request.inputs[name].CopyFrom(tensor)
        response = self._call(
            PREDICT_METHOD,
            request,
            predict_pb2.PredictResponse.FromString,
            timeout_s=timeout_s,
            model=model,
        )
        try:
            outputs = {name: to_ndarray(tensor) for name, tensor in response.outputs.items()}
        except TensorDecodeError as exc:
            log.error("undecodable output from model %s: %s", model.name, exc)
            raise errors.BackendError("The model server returned an unreadable tensor.") from None
        spec = response.model_spec
        version = spec.version.value if spec.HasField("version") else None
        return Prediction(outputs=outputs, model_version=version)

    def model_status(self, model: ModelRef, *, timeout_s: float) -> list[VersionStatus]:
        """Run ``GetModelStatus`` for the model's configured version or label (or all)."""
        request = model_status_pb2.GetModelStatusRequest(
            model_spec=model.to_spec(with_signature=False)
        )
        response = self._call(
            STATUS_METHOD,
            request,
            model_status_pb2.GetModelStatusResponse.FromString,
            timeout_s=timeout_s,
            model=model,
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

    def signature_defs(
        self, model: ModelRef, *, timeout_s: float
    ) -> Mapping[str, model_metadata_pb2.SignatureDef]:
        """Run ``GetModelMetadata`` and return the model's signature definitions."""
        request = model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model.to_spec(with_signature=False), metadata_field=["signature_def"]
        )
        response = self._call(
            METADATA_METHOD,
            request,
            model_metadata_pb2.GetModelMetadataResponse.FromString,
            timeout_s=timeout_s,
            model=model,
        )
        # The Any's type_url names tensorflow.serving.SignatureDefMap; our
        # wire-compatible message reads the same bytes.
        packed = response.metadata["signature_def"].value
        return dict(model_metadata_pb2.SignatureDefMap.FromString(packed).signature_def)


def translate_rpc_error(exc: grpc.RpcError, model: ModelRef) -> errors.ApiError:
    """Map a gRPC failure to the API error a client sees; details stay in the log."""
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    log.warning("backend call for model %s failed: %s %s", model.name, code.name, details)
    if code is grpc.StatusCode.NOT_FOUND:
        return errors.UnknownModel("The model server does not serve this model or version.")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
        return errors.BackendUnavailable("The model server is unavailable; retry shortly.")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.BackendTimeout("The model server did not answer within the deadline.")
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
        # We built the tensors: the backend rejecting them is our bug or a
        # registry/model mismatch, not the caller's fault.
        log.error("model server rejected a request built by the adapter: %s", details)
        return errors.BackendRejected("The model server rejected the request.")
    return errors.BackendError("The model server could not run this request.")
