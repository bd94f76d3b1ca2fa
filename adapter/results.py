"""What the core answers: per-image results in a batch, timings, and model states.

Plain frozen data, no HTTP: :mod:`adapter.api` renders them as JSON (or draws
them), :mod:`adapter.metrics` records the timings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from adapter.exceptions import ModelRejectedImage
from adapter.imaging import ImageError
from adapter.mapping.classification import Classification
from adapter.mapping.detection import Detection
from adapter.registry import RegistryEntry

ImageFailure = ImageError | ModelRejectedImage
"""Why one image of a batch got no result; the other images are not affected."""


@dataclass(frozen=True)
class ImageSize:
    """The original image's size in pixels, as displayed (EXIF orientation applied)."""

    width: int
    height: int


@dataclass(frozen=True)
class DetectResult:
    """One image's detections, boxes in its own pixels."""

    image: ImageSize
    detections: list[Detection]


@dataclass(frozen=True)
class ClassifyResult:
    """One image's best classes."""

    image: ImageSize
    classifications: list[Classification]


R = TypeVar("R", DetectResult, ClassifyResult)


@dataclass(frozen=True)
class Mapped(Generic[R]):
    """An image that got a result, and the seconds spent mapping its outputs."""

    result: R
    mapping_s: float


@dataclass(frozen=True)
class Failed:
    """An image that got no result, and why."""

    error: ImageFailure


@dataclass(frozen=True)
class Timings:
    """Seconds one request spent decoding, waiting on the model server, and mapping."""

    decode_s: float
    inference_s: float
    mapping_s: float


@dataclass(frozen=True)
class BatchResult(Generic[R]):
    """A request's answer: one slot per image, in request order, and the request's timings.

    ``version`` is the TF Serving version that answered (None if no image
    reached the model).
    """

    model: str
    version: int | None
    slots: tuple[Mapped[R] | Failed, ...]
    timings: Timings

    def single(self) -> Mapped[R]:
        """The one slot of a single-image request; its failure is the request's."""
        (slot,) = self.slots
        if isinstance(slot, Failed):
            raise slot.error
        return slot


@dataclass(frozen=True)
class ModelState:
    """A model's servable as the model server reports it, and whether it can serve now.

    ``state`` is TF Serving's (``AVAILABLE``, ``LOADING``, ...) or ours:
    ``NOT_FOUND``, ``UNREACHABLE``, ``TIMEOUT``, ``CIRCUIT_OPEN``,
    ``MISCONFIGURED`` (with ``problems`` naming each registry field).
    ``circuit`` is the backend's breaker state.
    """

    ready: bool
    state: str
    version: int | None
    circuit: str = "closed"
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class InputDescription:
    """What a model takes, as far as it is known (from the signature once resolved)."""

    encoding: str | None
    dtype: str | None
    size: tuple[int, int] | None = None
    resize: str | None = None
    color: str | None = None
    layout: str | None = None
    max_side: int | None = None


@dataclass(frozen=True)
class ModelDescription:
    """One model as ``GET /v1/models`` shows it: registry facts, input, live state.

    ``output_format`` is the resolved one (``tf_od_api``, ``yolo``,
    ``classification``; None until resolved); ``hints`` what the worker noticed
    about the registry entry (outputs that are not what it says).
    """

    entry: RegistryEntry
    input: InputDescription
    state: ModelState
    output_format: str | None = None
    hints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Readiness:
    """Every model's state; the service is ready when all are."""

    models: Mapping[str, ModelState]

    @property
    def not_ready(self) -> list[str]:
        """The names of the models that can't serve, sorted."""
        return sorted(name for name, state in self.models.items() if not state.ready)
