"""Per worker: the backends, and the registry's models checked against their live signatures.

Nothing here connects at import or construction: a backend's channel is made
on its first call, in the worker process. A model's signature is read once
(GetModelMetadata) on first need (``/readyz`` or a request) and cached; a
backend failure is not cached, so the next need asks again.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from adapter import imaging
from adapter.config import Settings
from adapter.exceptions import (
    SERVING_FAILURES,
    BackendTimeout,
    CircuitOpen,
    ModelNotReady,
    ModelNotServed,
)
from adapter.registry import BackendAddress, RegistryEntry
from adapter.resolution import BytesInput, Misconfigured, Resolution, ResolvedModel, resolve
from adapter.results import ModelState
from adapter.serving.backend import Backend
from adapter.serving.channel import ChannelSettings, message_bytes, tensor_bytes
from adapter.serving.grpc_client import GrpcClient
from adapter.serving.resilience import CircuitBreaker, Deadline, RetryBudget, RetryPolicy
from adapter.serving.servable import ModelRef, Transport

_BYTES_PER_ITEM = {"uint8": 1, "float32": 4}


TransportFactory = Callable[[BackendAddress, ChannelSettings], Transport]
"""Makes the transport to one backend address; :func:`open_transport` unless a test fakes it."""


def open_transport(address: BackendAddress, channel: ChannelSettings) -> Transport:
    """The real transport to ``address``: a gRPC channel or a REST session (opened lazily)."""
    if address.transport == "rest":
        # Imported on demand: gRPC-only deployments never load requests.
        from adapter.serving.rest_client import RestClient

        return RestClient(address.target, tls=channel.tls)
    return GrpcClient(address.target, channel)


log = logging.getLogger(__name__)


class BackendPool:
    """One :class:`Backend` per (transport, target), made on first use by ``connect``."""

    def __init__(self, settings: Settings, connect: TransportFactory = open_transport) -> None:
        self.settings = settings
        self.connect = connect
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
        return Backend(
            address.transport,
            self.connect(address, self._channel_settings(cap, cap)),
            retry=RetryPolicy(
                max_attempts=policy.retry_attempts, base_backoff_s=policy.retry_backoff_s
            ),
            budget=RetryBudget(policy.retry_budget_ratio),
            breaker=CircuitBreaker(policy.breaker_failures, policy.breaker_cooldown_s),
        )

    def size_limits(self, model: ResolvedModel) -> None:
        """Size the message limits of the model's backend from its tensor shapes.

        A backend's limits are the largest its resolved models need (see
        :func:`adapter.serving.channel.message_bytes`).
        """
        cap = self.settings.grpc_max_message_bytes
        # A batch request is one Predict, unless the model takes one image per call.
        batch = 1 if model.per_image else self.settings.max_batch_images
        outputs = [
            tensor_bytes(spec.dtype, spec.shape, batch=batch)
            for spec in model.output_specs.values()
        ]
        need = (
            message_bytes([self._input_bytes(model)], cap=cap),
            message_bytes(outputs, cap=cap),
        )
        with self._lock:
            per_model = self._limits.setdefault(model.backend, {})
            per_model[model.name] = need
            send = max(pair[0] for pair in per_model.values())
            receive = max(pair[1] for pair in per_model.values())
        self.get(model.backend).set_message_limits(send, receive)

    def _input_bytes(self, model: ResolvedModel) -> int:
        if isinstance(model.input, BytesInput):
            return self.settings.max_upload_bytes + 1024
        preprocessing = model.input.preprocessing
        width, height = preprocessing.size
        image = width * height * preprocessing.channels * _BYTES_PER_ITEM[preprocessing.dtype]
        return image * (1 if model.per_image else self.settings.max_batch_images) + 64


class Catalog:
    """The registry's models, each resolved against its live signature once per worker."""

    def __init__(
        self, settings: Settings, limits: imaging.Limits, pool: BackendPool | None = None
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.pool = pool or BackendPool(settings)
        self._lock = threading.Lock()
        self._resolved: dict[str, Resolution] = {}
        self._hints: dict[str, dict[str, None]] = {}

    def backend(self, entry: RegistryEntry) -> Backend:
        """The backend serving ``entry``."""
        return self.pool.get(entry.backend)

    def resolved(self, entry: RegistryEntry, deadline: Deadline) -> ResolvedModel:
        """The model completed from its signature; :class:`ModelNotReady` if they disagree.

        Backend failures while reading the signature propagate (and are not cached).
        """
        resolution = self._resolution(entry, deadline)
        if isinstance(resolution, Misconfigured):
            raise ModelNotReady(
                "This model's configuration does not match the model server's model; see /readyz.",
                retry_after_s=30,
            )
        return resolution

    def cached(self, entry: RegistryEntry) -> ResolvedModel | None:
        """The resolved model if this worker has resolved it already (no backend call)."""
        with self._lock:
            resolution = self._resolved.get(entry.name)
        return resolution if isinstance(resolution, ResolvedModel) else None

    def _resolution(self, entry: RegistryEntry, deadline: Deadline) -> Resolution:
        with self._lock:
            known = self._resolved.get(entry.name)
        if known is not None:
            return known
        signatures = self.backend(entry).signature_defs(entry.serving, deadline=deadline)
        resolution = resolve(entry, signatures, self.limits)
        if isinstance(resolution, ResolvedModel):
            self.pool.size_limits(resolution)
        with self._lock:
            return self._resolved.setdefault(entry.name, resolution)

    def hint(self, model: str, message: str) -> None:
        """Note that the model's registry entry looks wrong (logged once per worker)."""
        with self._lock:
            hints = self._hints.setdefault(model, {})
            if message in hints:
                return
            hints[message] = None
        log.warning("model %s: registry hint: %s", model, message)

    def hints(self, model: str) -> tuple[str, ...]:
        """What this worker noticed about the model's registry entry, in order."""
        with self._lock:
            return tuple(self._hints.get(model, {}))

    def state(
        self,
        entry: RegistryEntry,
        servables: dict[tuple[BackendAddress, ModelRef], ModelState] | None = None,
    ) -> ModelState:
        """One model's state; resolves its signature when its servable is available.

        ``servables`` caches servable states across calls, so models sharing a
        servable ask the backend once.
        """
        timeout_s = self.settings.status_timeout_s
        servables = {} if servables is None else servables
        key = (entry.backend, entry.serving)
        if key not in servables:
            servables[key] = self._servable_state(entry, Deadline(timeout_s))
        state = servables[key]
        if state.ready:
            try:
                resolution = self._resolution(entry, Deadline(timeout_s))
            except SERVING_FAILURES as exc:
                state = dataclasses.replace(state, ready=False, state=_failure_state(exc))
            else:
                if isinstance(resolution, Misconfigured):
                    state = dataclasses.replace(
                        state, ready=False, state="MISCONFIGURED", problems=resolution.problems
                    )
        return dataclasses.replace(state, circuit=self.backend(entry).breaker.state)

    def _servable_state(self, entry: RegistryEntry, deadline: Deadline) -> ModelState:
        backend = self.backend(entry)
        ref = entry.serving
        try:
            versions = backend.model_status(ref, deadline=deadline)
            if ref.version_label:  # TF Serving resolves a label only to an AVAILABLE version
                backend.signature_defs(ref, deadline=deadline)
        except SERVING_FAILURES as exc:
            return ModelState(ready=False, state=_failure_state(exc), version=None)
        available = [status.version for status in versions if status.available]
        if ref.version is not None:
            available = [version for version in available if version == ref.version]
        states = sorted({status.state for status in versions}) or ["UNKNOWN"]
        return ModelState(
            ready=bool(available),
            state="AVAILABLE" if available else "/".join(states),
            version=max(available) if available and not ref.version_label else ref.version,
        )


def _failure_state(error: Exception) -> str:
    if isinstance(error, CircuitOpen):
        return "CIRCUIT_OPEN"
    if isinstance(error, ModelNotServed | LookupError):
        return "NOT_FOUND"
    if isinstance(error, BackendTimeout):
        return "TIMEOUT"
    return "UNREACHABLE"
