"""What every transport to TF Serving shares: the servable reference, answers, failures.

The gRPC client and the REST client both take a :class:`ModelRef` and numpy
inputs, return :class:`Prediction` / :class:`VersionStatus`, and fail with
:class:`RpcFailure` carrying a gRPC status code (REST errors are mapped onto
the same codes), so retries, the circuit breaker and the HTTP error mapping
are written once, above the transport.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import numpy.typing as npt

from adapter.serving.protos import model_metadata_pb2, model_pb2


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

    def rest_path(self) -> str:
        """The REST API's model path: ``/v1/models/NAME[/versions/N | /labels/L]``."""
        path = f"/v1/models/{self.name}"
        if self.version is not None:
            return f"{path}/versions/{self.version}"
        if self.version_label:
            return f"{path}/labels/{self.version_label}"
        return path

    def describe(self) -> str:
        """``name``, ``name version 3`` or ``name label stable``, for logs and messages."""
        if self.version is not None:
            return f"{self.name} version {self.version}"
        if self.version_label:
            return f"{self.name} label {self.version_label}"
        return self.name


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
    error_code: int = 0
    error_message: str = ""

    @property
    def available(self) -> bool:
        """True when TF Serving can serve this version."""
        return self.state == "AVAILABLE"


SignatureDefs = Mapping[str, model_metadata_pb2.SignatureDef]


class RpcFailure(Exception):
    """A call to TF Serving failed: a gRPC status code and the server's (internal) details.

    ``details`` may name hosts and paths: it is for logs, never for clients.
    ``local`` is True for failures that say nothing about the server's health
    (a message over a size limit, an answer this side could not read): they
    are not retried and do not count against the circuit breaker.
    """

    def __init__(self, code: grpc.StatusCode, details: str, *, local: bool = False) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.local = local


class Transport(Protocol):
    """One way of reaching a TF Serving target (gRPC or REST); safe to share between threads.

    Numeric inputs are numpy arrays; a DT_STRING input is a 1-D numpy object
    array of ``bytes``. Every method raises :class:`RpcFailure` on failure.
    """

    target: str

    def predict(
        self,
        model: ModelRef,
        inputs: Mapping[str, npt.NDArray[Any]],
        *,
        output_filter: Sequence[str] = (),
        timeout_s: float,
    ) -> Prediction:
        """Run the model's signature on ``inputs``; only ``output_filter`` outputs if given."""
        ...

    def model_status(self, model: ModelRef, *, timeout_s: float) -> list[VersionStatus]:
        """Versions and states of the model (the configured version only, if one is set)."""
        ...

    def signature_defs(self, model: ModelRef, *, timeout_s: float) -> SignatureDefs:
        """The model's signature definitions (GetModelMetadata ``signature_def``)."""
        ...

    def set_message_limits(self, send_bytes: int, receive_bytes: int) -> None:
        """Allow requests up to ``send_bytes`` and answers up to ``receive_bytes`` from now on."""
        ...

    def close(self) -> None:
        """Release this process's connections; the next call opens new ones."""
        ...
