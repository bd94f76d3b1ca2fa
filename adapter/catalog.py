"""Per worker: the backends, and the registry's models checked against their live signatures.

Nothing here connects at import or construction: a backend's channel is made
on its first call, in the worker process. A model's signature is read once
(GetModelMetadata) on first need (``/readyz`` or a request) and cached; a
backend failure is not cached, so the next need asks again.
"""

from __future__ import annotations

import threading
from typing import Any

from adapter import errors
from adapter.config import Settings
from adapter.registry import BackendAddress, RegistryEntry
from adapter.serving.backend import Backend
from adapter.serving.channel import ChannelSettings, message_bytes, tensor_bytes
from adapter.serving.grpc_client import GrpcClient
from adapter.serving.protos import tensor_pb2
from adapter.serving.resilience import CircuitBreaker, Deadline, RetryPolicy
from adapter.serving.servable import ModelRef, Transport
from adapter.signatures import Resolution, resolve

DT = tensor_pb2.DataType
_BYTES_PER_ITEM = {"uint8": 1, "float32": 4}


class BackendPool:
    """One :class:`Backend` per (transport, target), made on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._backends: dict[BackendAddress, Backend] = {}
        self._limits: dict[BackendAddress, dict[str, tuple[int, int]]] = {}

    def _channel_settings(self, send: int, receive: int) -> ChannelSettings:
        policy = self.settings.backend_policy
        return ChannelSettings(
            max_send_bytes=send,
            max_receive_bytes=receive,
            keepalive_time_ms=policy.keepalive_ms,
            tls=policy.tls,
        )

    def get(self, address: BackendAddress) -> Backend:
        """The backend at ``address``."""
        with self._lock:
            backend = self._backends.get(address)
            if backend is None:
                backend = self._backends[address] = self._make(address)
            return backend

    def _make(self, address: BackendAddress) -> Backend:
        policy = self.settings.backend_policy
        cap = self.settings.grpc_max_message_bytes
        transport: Transport
        if address.transport == "rest":
            # Imported on demand: gRPC-only deployments never load requests.
            from adapter.serving.rest_client import RestClient

            transport = RestClient(address.target, tls=policy.tls)
        else:
            transport = GrpcClient(address.target, self._channel_settings(cap, cap))
        return Backend(
            address.transport,
            transport,
            retry=RetryPolicy(
                max_attempts=policy.retry_attempts, base_backoff_s=policy.retry_backoff_s
            ),
            breaker=CircuitBreaker(policy.breaker_failures, policy.breaker_cooldown_s),
        )

    def size_limits(self, config: RegistryEntry, resolution: Resolution) -> None:
        """Size the gRPC message limits of the model's backend from its tensor shapes.

        A backend's limits are the largest its resolved models need (see
        :func:`adapter.serving.channel.message_bytes`).
        """
        backend = self.get(config.backend)
        if not isinstance(backend.transport, GrpcClient):
            return
        cap = self.settings.grpc_max_message_bytes
        batch = self.settings.max_batch_images  # a batch request is one Predict
        outputs = [
            tensor_bytes(spec.dtype, spec.shape, batch=batch)
            for spec in resolution.outputs.values()
        ]
        need = (
            message_bytes([self._input_bytes(resolution)], cap=cap),
            message_bytes(outputs, cap=cap),
        )
        with self._lock:
            per_model = self._limits.setdefault(config.backend, {})
            per_model[config.name] = need
            send = max(pair[0] for pair in per_model.values())
            receive = max(pair[1] for pair in per_model.values())
        backend.transport.reconfigure(self._channel_settings(send, receive))

    def _input_bytes(self, resolution: Resolution) -> int | None:
        spec = resolution.config.input
        if spec.encoding == "bytes":
            return self.settings.max_upload_bytes + 1024
        if spec.preprocessing is None:
            return None
        width, height = spec.preprocessing.size
        channels = 1 if spec.preprocessing.color == "gray" else 3
        image = width * height * channels * _BYTES_PER_ITEM[spec.preprocessing.dtype]
        return image * self.settings.max_batch_images + 64


class Catalog:
    """The registry's models, each resolved against its live signature once per worker."""

    def __init__(self, settings: Settings, pool: BackendPool | None = None) -> None:
        self.settings = settings
        self.pool = pool or BackendPool(settings)
        self._lock = threading.Lock()
        self._resolved: dict[str, Resolution] = {}

    def model(self, name: str, task: str | None = None) -> RegistryEntry:
        """The registry entry ``name`` (no backend call); 404 if unknown or not of ``task``."""
        config = self.settings.models.get(name)
        if config is None:
            raise errors.UnknownModel(f"There is no model named {name!r}; see GET /v1/models.")
        if task is not None and config.task != task:
            raise errors.NotFound(
                f"Model {name!r} is a {config.task} model; it has no {task} endpoint."
            )
        return config

    def backend(self, config: RegistryEntry) -> Backend:
        """The backend serving ``config``."""
        return self.pool.get(config.backend)

    def resolution(self, config: RegistryEntry, deadline: Deadline) -> Resolution:
        """The model checked against its signature (cached); backend errors propagate."""
        with self._lock:
            known = self._resolved.get(config.name)
        if known is not None:
            return known
        signatures = self.backend(config).signature_defs(config.serving, deadline=deadline)
        resolution = resolve(config, signatures)
        if resolution.ok:
            self.pool.size_limits(config, resolution)
        with self._lock:
            return self._resolved.setdefault(config.name, resolution)

    def known(self, config: RegistryEntry) -> RegistryEntry:
        """The completed entry if this worker has resolved it already, else the registry's."""
        with self._lock:
            resolution = self._resolved.get(config.name)
        return resolution.config if resolution is not None and resolution.ok else config

    def ready_config(self, config: RegistryEntry, deadline: Deadline) -> RegistryEntry:
        """The completed registry entry; 503 ``model-not-ready`` if the signature disagrees."""
        resolution = self.resolution(config, deadline)
        if not resolution.ok:
            raise errors.ModelNotReady(
                "This model's configuration does not match the model server's model; see /readyz.",
                retry_after_s=30,
            )
        return resolution.config

    def readiness(self) -> dict[str, dict[str, Any]]:
        """Per model: ready or not, its state, version and problems (for ``/readyz``)."""
        servables: dict[tuple[BackendAddress, ModelRef], dict[str, Any]] = {}
        return {
            name: self.state(config, servables) for name, config in self.settings.models.items()
        }

    def state(
        self,
        config: RegistryEntry,
        servables: dict[tuple[BackendAddress, ModelRef], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """One model's readiness: ``ready``, ``state``, ``version``, ``circuit``, ``problems``.

        ``servables`` caches servable states across calls, so models sharing a
        servable ask the backend once.
        """
        timeout_s = self.settings.status_timeout_s
        servables = {} if servables is None else servables
        key = (config.backend, config.serving)
        if key not in servables:
            servables[key] = self._servable_state(config, Deadline(timeout_s))
        state = dict(servables[key])
        if state["ready"]:
            try:
                resolution = self.resolution(config, Deadline(timeout_s))
            except errors.ApiError as exc:
                state.update(ready=False, state=_failure_state(exc))
            else:
                if not resolution.ok:
                    state.update(ready=False, state="MISCONFIGURED")
                    state["problems"] = list(resolution.problems)
        state["circuit"] = self.backend(config).breaker.state
        return state

    def _servable_state(self, config: RegistryEntry, deadline: Deadline) -> dict[str, Any]:
        backend = self.backend(config)
        ref = config.serving
        try:
            versions = backend.model_status(ref, deadline=deadline)
            if ref.version_label:  # TF Serving resolves a label only to an AVAILABLE version
                backend.signature_defs(ref, deadline=deadline)
        except errors.ApiError as exc:
            return {"ready": False, "state": _failure_state(exc), "version": None}
        available = [status.version for status in versions if status.available]
        if ref.version is not None:
            available = [version for version in available if version == ref.version]
        states = sorted({status.state for status in versions}) or ["UNKNOWN"]
        return {
            "ready": bool(available),
            "state": "AVAILABLE" if available else "/".join(states),
            "version": max(available) if available and not ref.version_label else ref.version,
        }


def _failure_state(error: errors.ApiError) -> str:
    if isinstance(error, errors.CircuitOpen):
        return "CIRCUIT_OPEN"
    if isinstance(error, errors.ModelNotServed):
        return "NOT_FOUND"
    if error.status == 504:
        return "TIMEOUT"
    return "UNREACHABLE" if error.status >= 500 else "NOT_FOUND"
