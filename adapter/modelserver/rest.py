"""TF Serving's HTTP/REST API (``--rest_api_port``) over the same ServableManager as gRPC.

Routes, as TF Serving's http_rest_api_handler.cc (paths are case-insensitive,
names and labels URL-decoded)::

    GET  /v1/models/NAME[/versions/N | /labels/L]            model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata   signature_def metadata
    POST /v1/models/NAME[/versions/N | /labels/L]:predict    row or columnar predict

Status and metadata go through the gRPC servicers' own code; predict turns the
JSON into a PredictRequest and runs :func:`adapter.modelserver.predict.predict`,
so both APIs give the same answers and the same messages. Errors are
``{"error": "<message>"}`` with TF Serving's HTTP status for the code
(ToHTTPStatusCode in http_server.cc). Model runs use a pool of
``--rest_api_num_threads`` threads and are given ``--rest_api_timeout_in_ms``
(0 = no limit) before the client gets DEADLINE_EXCEEDED (504).
"""

from __future__ import annotations

import logging
import re
from concurrent import futures
from typing import Any
from urllib.parse import unquote

import grpc
import orjson
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
)

from adapter.modelserver import rest_predict, status
from adapter.modelserver.predict import DEFAULT_SIGNATURE, dtype_name, predict
from adapter.modelserver.rest_http import RestServer
from adapter.modelserver.rest_json import TensorBuilder, invalid
from adapter.modelserver.servables import ServableManager
from adapter.modelserver.service import SIGNATURE_DEF, ModelService, PredictionService

log = logging.getLogger("adapter.modelserver")

_SPEC = r"(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
_PREDICT = re.compile(rf"/v1/models/([^/:]+){_SPEC}:(classify|regress|predict)", re.IGNORECASE)
_STATUS = re.compile(rf"/v1/models(?:/([^/:]+))?{_SPEC}(?:/(metadata))?", re.IGNORECASE)

C = grpc.StatusCode
HTTP_STATUS: dict[grpc.StatusCode, int] = {  # http_server.cc: ToHTTPStatusCode()
    C.OK: 200, C.CANCELLED: 499, C.UNKNOWN: 500, C.INVALID_ARGUMENT: 400,
    C.DEADLINE_EXCEEDED: 504, C.NOT_FOUND: 404, C.ALREADY_EXISTS: 409,
    C.PERMISSION_DENIED: 403, C.RESOURCE_EXHAUSTED: 429, C.FAILED_PRECONDITION: 400,
    C.ABORTED: 409, C.OUT_OF_RANGE: 400, C.UNIMPLEMENTED: 501, C.INTERNAL: 500,
    C.UNAVAILABLE: 503, C.DATA_LOSS: 500, C.UNAUTHENTICATED: 401,
}  # fmt: skip
TIMED_OUT = "Timed out waiting for notification"  # DirectSession's DeadlineExceeded text
_INT64_MAX = 2**63 - 1


class RestApi:
    """Answers REST requests from ``manager``: ``handle(method, path, body) -> (status, JSON)``."""

    def __init__(self, manager: ServableManager, num_threads: int, timeout_ms: int) -> None:
        """Run predicts on ``num_threads`` threads, each limited to ``timeout_ms`` (0: none)."""
        self._manager = manager
        self._models = ModelService(manager)
        self._predictions = PredictionService(manager, "content")
        self._timeout = timeout_ms / 1000 if timeout_ms > 0 else None
        self._pool = futures.ThreadPoolExecutor(num_threads, thread_name_prefix="rest")

    def close(self) -> None:
        """Drop queued predicts; those running finish on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """The HTTP status and JSON body for one request, errors included."""
        try:
            return 200, self._dispatch(method, path, body)
        except status.ServingError as err:
            log.debug("REST %s %s failed: %s", method, path, err.message)
            failure = err
        except Exception as exc:
            log.exception("REST %s %s failed unexpectedly", method, path)
            failure = status.from_exception(exc)
        return HTTP_STATUS.get(failure.code, 500), orjson.dumps({"error": failure.message})

    def _dispatch(self, method: str, path: str, body: bytes) -> bytes:
        """ProcessRequest(): match the path, parse the model spec, call the handler."""
        pattern = _PREDICT if method == "POST" else _STATUS if method == "GET" else None
        match = pattern.fullmatch(path) if pattern is not None else None
        if match is None:
            raise invalid(f"Malformed request: {method} {path}")
        name, version_text, label, action = match.groups()
        name = unquote(name or "", errors="replace")
        version = None
        if version_text:
            version = int(version_text)
            if version > _INT64_MAX:
                raise invalid(f"Failed to convert version: {version_text} to numeric.")
        label = unquote(label, errors="replace") if label else None
        if method == "POST":
            if action == "predict":
                return self._predict(name, version, label, body)
            if action in ("classify", "regress"):
                raise status.unimplemented(action.capitalize())
            raise invalid(f"Malformed request: {method} {path}")
        if not name:
            raise invalid("Missing model name in request.")
        if action == "metadata":
            return self._metadata(name, version, label)
        return self._status(name, version, label)

    def _status(self, name: str, version: int | None, label: str | None) -> bytes:
        """ProcessModelStatusRequest(): GetModelStatus as protobuf JSON."""
        request = get_model_status_pb2.GetModelStatusRequest()
        _fill_spec(request.model_spec, name, version, label)
        response = _unwrapped(ModelService.GetModelStatus)(self._models, request, None)
        return orjson.dumps(_to_dict(response))

    def _metadata(self, name: str, version: int | None, label: str | None) -> bytes:
        """ProcessModelMetadataRequest(): model_spec plus the SignatureDefMap, field names kept."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[SIGNATURE_DEF])
        _fill_spec(request.model_spec, name, version, label)
        metadata = _unwrapped(PredictionService.GetModelMetadata)(self._predictions, request, None)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        metadata.metadata[SIGNATURE_DEF].Unpack(signature_map)
        return orjson.dumps(
            {
                "model_spec": _to_dict(metadata.model_spec, keep_names=True),
                "metadata": {SIGNATURE_DEF: _to_dict(signature_map, keep_names=True)},
            }
        )

    def _predict(self, name: str, version: int | None, label: str | None, body: bytes) -> bytes:
        """ProcessPredictRequest() on the pool, within the REST timeout."""
        try:
            job = self._pool.submit(self._run_predict, name, version, label, body)
        except RuntimeError:  # the pool is shut down: SIGTERM arrived
            raise status.ServingError(C.UNAVAILABLE, "The server is shutting down") from None
        try:
            return job.result(self._timeout)
        except futures.TimeoutError:
            job.cancel()
            raise status.ServingError(C.DEADLINE_EXCEEDED, TIMED_OUT) from None

    def _run_predict(self, name: str, version: int | None, label: str | None, body: bytes) -> bytes:
        """JSON → PredictRequest → predict() → JSON in the request's format."""
        document = rest_predict.parse_document(body)
        signature_name = rest_predict.signature_name(document)
        servable = self._manager.resolve(name or "", version, label)
        key = signature_name or DEFAULT_SIGNATURE
        signature = servable.signature_defs.get(key)
        if signature is None:
            raise invalid(f'Serving signature name: "{key}" not found in signature def')
        if not signature.inputs:
            raise invalid(f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
        may_have_bools = b"true" in body or b"false" in body
        builders = {
            alias: TensorBuilder(info.dtype, dtype_name(info.dtype), may_have_bools=may_have_bools)
            for alias, info in signature.inputs.items()
        }
        fmt, arrays = rest_predict.request_tensors(document, builders)
        request = predict_pb2.PredictRequest()
        _fill_spec(request.model_spec, name, version, label)
        request.model_spec.signature_name = signature_name
        for alias, array in arrays.items():
            request.inputs[alias].CopyFrom(
                tf.make_tensor_proto(array, dtype=signature.inputs[alias].dtype)
            )
        response = predict(self._manager, request, "content")
        outputs = {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}
        return rest_predict.predict_json(outputs, fmt)


def _unwrapped(method: Any) -> Any:
    """A servicer method without its gRPC error wrapper: it raises ServingError instead."""
    return method.__wrapped__


def _fill_spec(spec: Any, name: str, version: int | None, label: str | None) -> None:
    """FillModelSpecWithNameVersionAndLabel()."""
    spec.name = name
    if version is not None:
        spec.version.value = version
    elif label is not None:
        spec.version_label = label


def _to_dict(message: Any, *, keep_names: bool = False) -> dict[str, Any]:
    """Protobuf JSON with every field printed, as TF Serving's JsonPrintOptions do."""
    result: dict[str, Any] = json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=keep_names
    )
    return result


def start_rest(host: str, port: int, manager: ServableManager, args: Any) -> RestServer:
    """Bind and start the REST API with the ``--rest_api_*`` flags; raises OSError on failure."""
    api = RestApi(manager, args.rest_api_num_threads, args.rest_api_timeout_in_ms)
    try:
        server = RestServer(host, port, api)
    except OSError as exc:
        api.close()
        raise OSError(f"Failed to start HTTP Server at {host}:{port}: {exc.strerror}") from None
    server.start()
    return server
