"""REST client for TF Serving's HTTP API: the same Transport as the gRPC client, over JSON.

Predict sends the columnar form (``{"signature_name": ..., "inputs": {...}}``)
with numpy arrays written by orjson (never Python lists) and DT_STRING values
as ``{"b64": ...}``. The REST API names no outputs when a signature has one,
returns no model version and has no output filter, so the signature's outputs
(read once per model with ``GET .../metadata``, then cached) name and type
the answer, and the filter is applied here. Connections are pooled in one
``requests.Session`` per process, made on first use after a fork; HTTP
statuses map back to the gRPC codes TF Serving's ToHTTPStatusCode() came from.

TLS settings apply to ``https://`` targets only (a TLS proxy in front): TF
Serving's own REST port is plain HTTP whatever its ``--ssl_config_file``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import grpc
import numpy.typing as npt
import orjson
import requests
from google.protobuf import json_format
from requests.adapters import HTTPAdapter

from adapter import tracing
from adapter.serving.channel import TlsFiles
from adapter.serving.protos import model_metadata_pb2
from adapter.serving.rest_codec import (
    decode_output,
    encode_predict_body,
    name_outputs,
    version_statuses,
)
from adapter.serving.rest_tls import TlsAdapter
from adapter.serving.servable import (
    ModelRef,
    Prediction,
    RpcFailure,
    SignatureDefs,
    VersionStatus,
)

log = logging.getLogger(__name__)

C = grpc.StatusCode
# The inverse of TF Serving's ToHTTPStatusCode() where it is one-to-one, plus what a
# proxy in between may answer (502 and 504 from a load balancer, 413 for a big body).
_CODE_FOR_HTTP: dict[int, grpc.StatusCode] = {
    400: C.INVALID_ARGUMENT, 401: C.UNAUTHENTICATED, 403: C.PERMISSION_DENIED,
    404: C.NOT_FOUND, 408: C.DEADLINE_EXCEEDED, 409: C.ABORTED, 413: C.RESOURCE_EXHAUSTED,
    429: C.RESOURCE_EXHAUSTED, 499: C.CANCELLED, 500: C.INTERNAL, 501: C.UNIMPLEMENTED,
    502: C.UNAVAILABLE, 503: C.UNAVAILABLE, 504: C.DEADLINE_EXCEEDED,
}  # fmt: skip


def code_for_http(status: int) -> grpc.StatusCode:
    """The gRPC code for an HTTP error status (other 4xx INVALID_ARGUMENT, 5xx INTERNAL)."""
    if status in _CODE_FOR_HTTP:
        return _CODE_FOR_HTTP[status]
    if 400 <= status < 500:
        return C.INVALID_ARGUMENT
    return C.INTERNAL if status >= 500 else C.UNKNOWN


def base_url(target: str) -> str:
    """``http://host:port`` for ``host:port``; ``http(s)://...`` as given, no trailing slash."""
    target = target.strip().rstrip("/")
    return target if target.startswith(("http://", "https://")) else f"http://{target}"


class RestClient:
    """Calls one TF Serving REST endpoint; safe to share between threads.

    ``target`` is a base URL (``http://host:8501``) or ``host:port``.
    ``pool_size`` (default 16) caps the keep-alive connections kept per process.
    ``tls`` (default None: system roots) is used for an ``https://`` target:
    its CA is the only one trusted, its pair is the client certificate.
    Requests are not retried here and proxies from the environment are not
    used: the target is called directly.
    """

    def __init__(self, target: str, *, pool_size: int = 16, tls: TlsFiles | None = None) -> None:
        self.target = target
        self._base = base_url(target)
        self._pool_size = pool_size
        self._tls = tls
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._pid = 0
        self._signatures: dict[tuple[str, int | None, str | None], SignatureDefs] = {}

    def _session_here(self) -> requests.Session:
        # Pooled sockets must never cross a fork: make one session per process, on first use.
        with self._lock:
            if self._session is None or self._pid != os.getpid():
                session = requests.Session()
                session.trust_env = False
                options: dict[str, Any] = {
                    "pool_connections": 1, "pool_maxsize": self._pool_size, "max_retries": 0
                }  # fmt: skip
                session.mount("http://", HTTPAdapter(**options))
                secure = TlsAdapter(self._tls, **options) if self._tls else HTTPAdapter(**options)
                session.mount("https://", secure)
                self._session, self._pid = session, os.getpid()
            return self._session

    def set_message_limits(self, send_bytes: int, receive_bytes: int) -> None:
        """Nothing to do: HTTP bodies have no size limit on this side."""

    def close(self) -> None:
        """Close this process's connections; the next call opens new ones."""
        with self._lock:
            if self._session is not None and self._pid == os.getpid():
                self._session.close()
            self._session = None

    def _call(self, method: str, path: str, body: bytes | None, timeout_s: float) -> Any:
        """One request; the parsed JSON answer, or RpcFailure (never naming the URL)."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        headers.update(tracing.outgoing())
        try:
            response = self._session_here().request(
                method,
                self._base + path,
                data=body,
                headers=headers,
                timeout=max(timeout_s, 0.001),
                allow_redirects=False,
            )
        except requests.Timeout:
            raise RpcFailure(C.DEADLINE_EXCEEDED, "no answer within the deadline") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise RpcFailure(C.UNAVAILABLE, f"connection failed: {_root_cause(exc)}") from None
        except requests.RequestException as exc:
            raise RpcFailure(C.INTERNAL, type(exc).__name__, local=True) from None
        if response.status_code != 200:
            raise _http_failure(response)
        try:
            return _parse_json(response.content)
        except ValueError:
            raise RpcFailure(C.INTERNAL, "the answer is not JSON", local=True) from None

    def predict(
        self,
        model: ModelRef,
        inputs: Mapping[str, npt.NDArray[Any]],
        *,
        output_filter: Sequence[str] = (),
        timeout_s: float,
    ) -> Prediction:
        """POST ``:predict`` and decode the outputs (only ``output_filter``'s, if given)."""
        started = time.monotonic()
        body = encode_predict_body(model.signature, inputs)
        answer = self._call("POST", _quoted(model.rest_path()) + ":predict", body, timeout_s)
        if not isinstance(answer, dict) or "outputs" not in answer:
            raise RpcFailure(C.INTERNAL, "the answer has no 'outputs'", local=True)
        left = timeout_s - (time.monotonic() - started)
        cached = _signature_key(model) in self._signatures
        outputs = self._signature_outputs(model, left, fresh=False)
        named = name_outputs(answer["outputs"], outputs, output_filter)
        if named is None and cached:  # the model changed since it was cached: read it again
            outputs = self._signature_outputs(model, left, fresh=True)
            named = name_outputs(answer["outputs"], outputs, output_filter)
        if named is None:  # no signature that fits: the answer's own names, if it has them
            outputs, named = None, name_outputs(answer["outputs"], None, output_filter)
        if named is None:
            raise RpcFailure(C.INTERNAL, "cannot tell which output is which", local=True)
        wanted = list(output_filter) or list(named)
        missing = [name for name in wanted if name not in named]
        if missing:
            raise RpcFailure(
                C.INVALID_ARGUMENT,
                f"output tensor alias not found in signature: {missing[0]}",
                local=True,
            )
        info = outputs or {}
        decoded = {name: decode_output(named[name], info.get(name)) for name in wanted}
        return Prediction(outputs=decoded, model_version=model.version)

    def _signature_outputs(
        self, model: ModelRef, timeout_s: float, *, fresh: bool
    ) -> Mapping[str, model_metadata_pb2.TensorInfo] | None:
        """The signature's outputs from the cache (or one metadata call); None if unknown."""
        signatures = None if fresh else self._signatures.get(_signature_key(model))
        if signatures is None and timeout_s > 0:
            try:
                signatures = self.signature_defs(model, timeout_s=timeout_s)
            except RpcFailure as exc:
                log.debug("no signature for %s: %s", model.describe(), exc.code.name)
        if signatures is None or model.signature not in signatures:
            return None
        return signatures[model.signature].outputs

    def model_status(self, model: ModelRef, *, timeout_s: float) -> list[VersionStatus]:
        """GET the model path: its versions and states (the configured version only)."""
        answer = self._call("GET", _quoted(model.rest_path()), None, timeout_s)
        try:
            return version_statuses(answer)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise RpcFailure(C.INTERNAL, "unreadable model status", local=True) from None

    def signature_defs(self, model: ModelRef, *, timeout_s: float) -> SignatureDefs:
        """GET ``.../metadata``: the model's signature definitions (cached for predict)."""
        answer = self._call("GET", _quoted(model.rest_path()) + "/metadata", None, timeout_s)
        try:
            signature_map = json_format.ParseDict(
                answer["metadata"]["signature_def"],
                model_metadata_pb2.SignatureDefMap(),
                ignore_unknown_fields=True,
            )
        except (KeyError, TypeError, AttributeError, json_format.ParseError):
            raise RpcFailure(C.INTERNAL, "unreadable model metadata", local=True) from None
        signatures = dict(signature_map.signature_def)
        with self._lock:
            self._signatures[_signature_key(model)] = signatures
        return signatures


def _signature_key(model: ModelRef) -> tuple[str, int | None, str | None]:
    """The servable a ModelRef names, whatever its signature: the metadata cache's key."""
    return (model.name, model.version, model.version_label)


def _quoted(path: str) -> str:
    """The path with names and labels percent-encoded (TF Serving decodes them)."""
    return quote(path, safe="/")


def _parse_json(content: bytes) -> Any:
    """orjson, or the standard parser for TF Serving's NaN/Infinity tokens."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return json.loads(content)


def _http_failure(response: requests.Response) -> RpcFailure:
    """The RpcFailure for an HTTP error status, with the server's ``error`` text."""
    code = code_for_http(response.status_code)
    try:
        details = str(_parse_json(response.content)["error"])
    except (ValueError, KeyError, TypeError):
        details = f"HTTP {response.status_code}"
    return RpcFailure(code, details, local=response.status_code == 413)


def _root_cause(exc: BaseException) -> str:
    """The innermost OS error's text (e.g. ``Connection refused``), without addresses."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.strerror:
            return item.strerror
        stack.extend([*item.args, getattr(item, "reason", None), item.__cause__, item.__context__])
    return type(exc).__name__
