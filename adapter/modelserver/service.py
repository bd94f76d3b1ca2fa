"""The gRPC servicers: TF Serving's PredictionService and ModelService over a ServableManager.

Every handler turns a :class:`status.ServingError` into the gRPC status TF
Serving would send (code + message, cut at 1024 characters); any other exception
is logged with its traceback here and reaches the client only as INTERNAL with a
one-line message.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from adapter.modelserver import status
from adapter.modelserver.predict import predict, spec_parts
from adapter.modelserver.servables import ServableManager

log = logging.getLogger("adapter.modelserver")

SIGNATURE_DEF = "signature_def"

R = TypeVar("R")


def _handler(method: Callable[..., R]) -> Callable[..., R]:
    """Wrap an RPC method so failures become TF Serving statuses, never tracebacks."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> R:
        try:
            return method(self, request, context)
        except status.ServingError as err:
            log.debug("%s failed: %s", method.__name__, err.message)
            context.abort(err.code, err.grpc_details())
        except Exception as exc:
            log.exception("%s failed unexpectedly", method.__name__)
            err = status.from_exception(exc)
            context.abort(err.code, err.grpc_details())
        raise AssertionError("unreachable")  # context.abort always raises

    return wrapper


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata; Classify, Regress and MultiInference are UNIMPLEMENTED."""

    def __init__(self, manager: ServableManager, encoding: str = "content") -> None:
        """Serve from ``manager``; ``encoding`` is the output tensor encoding (see predict)."""
        self._manager = manager
        self._encoding = encoding

    @_handler
    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Run a signature of a loaded model (logging the caller's W3C trace context, if any)."""
        for key, value in context.invocation_metadata():
            if key == "traceparent":
                log.info("Predict %s traceparent=%s", request.model_spec.name, value)
        return predict(self._manager, request, self._encoding)

    @_handler
    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Return ``signature_def`` as an Any(SignatureDefMap), exactly as on disk."""
        if not request.HasField("model_spec"):
            raise status.missing_model_spec()
        if not request.metadata_field:
            raise status.no_metadata_field()
        for field in request.metadata_field:
            if field != SIGNATURE_DEF:
                raise status.metadata_field_not_supported(field)
        servable = self._manager.resolve(*spec_parts(request.model_spec))
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.metadata[SIGNATURE_DEF].Pack(signature_map)
        return response

    @_handler
    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Not provided by this server."""
        raise status.unimplemented("Classify")

    @_handler
    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Not provided by this server."""
        raise status.unimplemented("Regress")

    @_handler
    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Not provided by this server."""
        raise status.unimplemented("MultiInference")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus; HandleReloadConfigRequest is UNIMPLEMENTED."""

    def __init__(self, manager: ServableManager) -> None:
        """Report states from ``manager``."""
        self._manager = manager

    @_handler
    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Versions and states of a model, like get_model_status_impl.cc.

        As in TF Serving, a ``version`` selects one version and anything else
        (including a ``version_label``) lists every version the model has had,
        newest first, unloaded ones as END.
        """
        if not request.HasField("model_spec"):
            raise status.missing_model_spec()
        name = request.model_spec.name
        statuses = self._manager.version_statuses(name)
        if request.model_spec.HasField("version"):
            version = request.model_spec.version.value
            if version not in statuses:
                raise status.version_status_not_found(version, name)
            statuses = {version: statuses[version]}
        elif not statuses:
            raise status.model_status_not_found(name)
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, state in statuses.items():
            entry = response.model_version_status.add()
            entry.version = version
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state.state)
            entry.status.error_code = state.error_code.value[0]
            entry.status.error_message = state.error_message
        return response

    @_handler
    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Not provided by this server (restart it with a new --model_config_file)."""
        raise status.unimplemented("HandleReloadConfigRequest")
