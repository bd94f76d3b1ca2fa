"""The service the HTTP layer calls: models, readiness, detect and classify; no HTTP in here.

One :class:`Service` per worker. It owns the image limits, the catalog
(backends, and registry entries resolved against their live signatures) and
the pipeline; every answer is a typed value of :mod:`adapter.results`, every
failure one of :mod:`adapter.exceptions` (or an
:class:`~adapter.imaging.ImageError` in a batch slot).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from adapter import metrics
from adapter.admission import Admission
from adapter.catalog import BackendPool, Catalog
from adapter.config import Settings
from adapter.exceptions import UnknownModel, WrongTask
from adapter.mapping.detection import DetectionOptions
from adapter.pipeline import Call, ClassifyOptions, Pipeline, check_labels, servable
from adapter.registry import BackendAddress, RegistryEntry
from adapter.resolution import BytesInput, ResolvedModel
from adapter.results import (
    BatchResult,
    ClassifyResult,
    DetectResult,
    InputDescription,
    ModelDescription,
    ModelState,
    Readiness,
)
from adapter.serving.servable import ModelRef


class Service:
    """Detect and classify with the registry's models; describe them and their readiness.

    Nothing connects here: each backend's channel is made on its first call. ``pool``
    (tests give one with a fake transport) defaults to the real transports.
    """

    def __init__(self, settings: Settings, pool: BackendPool | None = None) -> None:
        self.settings = settings
        self.limits = settings.image_limits
        self.catalog = Catalog(settings, self.limits, pool)
        self.pipeline = Pipeline(self.catalog, settings.predict_concurrency)
        self.admission = Admission(
            settings.max_in_flight,
            settings.admission_queue,
            settings.admission_wait_s,
            on_refuse=metrics.request_refused,
        )

    @contextmanager
    def admitted(self, call: Call) -> Iterator[None]:
        """Hold one of this worker's places for an inference request while it runs.

        Waits at most ``admission_wait_s`` and never past the call's deadline;
        :class:`~adapter.exceptions.Overloaded` if no place frees in time.
        """
        admitted = self.admission.acquire(call.deadline.remaining())
        try:
            yield
        finally:
            self.admission.release(admitted)

    def entry(self, name: str, task: str | None = None) -> RegistryEntry:
        """The registry entry ``name`` (no backend call); :class:`UnknownModel` or
        :class:`WrongTask` if there is none, or it is not of ``task``."""
        entry = self.settings.models.get(name)
        if entry is None:
            raise UnknownModel(f"There is no model named {name!r}; see GET /v1/models.")
        if task is not None and entry.task != task:
            raise WrongTask(f"Model {name!r} is a {entry.task} model; it has no {task} endpoint.")
        return entry

    def models(self) -> list[ModelDescription]:
        """Every model, in registry order, with its servable's state."""
        servables: dict[tuple[BackendAddress, ModelRef], ModelState] = {}
        return [self._describe(entry, servables) for entry in self.settings.models.values()]

    def model(self, name: str) -> ModelDescription:
        """One model and its servable's state; :class:`UnknownModel` if there is none."""
        return self._describe(self.entry(name), {})

    def readiness(self) -> Readiness:
        """Every model's state: AVAILABLE and matching the registry, or why not."""
        servables: dict[tuple[BackendAddress, ModelRef], ModelState] = {}
        return Readiness(
            {
                name: self.catalog.state(entry, servables)
                for name, entry in self.settings.models.items()
            }
        )

    def detect(
        self, name: str, images: Sequence[bytes], options: DetectionOptions, call: Call
    ) -> BatchResult[DetectResult]:
        """Detect objects in each image with model ``name``, as one batch."""
        entry = self.entry(name, "detection")
        ref, model = self._prepare(entry, options.labels, call)
        return self.pipeline.detect(model, ref, images, options, call)

    def classify(
        self, name: str, images: Sequence[bytes], options: ClassifyOptions, call: Call
    ) -> BatchResult[ClassifyResult]:
        """Classify each image with model ``name``, as one batch."""
        entry = self.entry(name, "classification")
        ref, model = self._prepare(entry, options.labels, call)
        return self.pipeline.classify(model, ref, images, options, call)

    def _prepare(
        self, entry: RegistryEntry, labels: frozenset[str] | None, call: Call
    ) -> tuple[ModelRef, ResolvedModel]:
        """The request's options checked against the entry, then the model resolved."""
        check_labels(entry, labels)
        ref = servable(entry, call.version)
        return ref, self.catalog.resolved(entry, call.deadline)

    def _describe(
        self, entry: RegistryEntry, servables: dict[tuple[BackendAddress, ModelRef], ModelState]
    ) -> ModelDescription:
        state = self.catalog.state(entry, servables)  # resolves the signature when it can
        resolved = self.catalog.cached(entry)
        return ModelDescription(
            entry,
            _input(entry, resolved),
            state,
            output_format=None if resolved is None else resolved.format,
            hints=self.catalog.hints(entry.name),
        )


def _input(entry: RegistryEntry, model: ResolvedModel | None) -> InputDescription:
    """The input as resolved from the signature, or as far as the registry says."""
    if model is None:
        spec = entry.input
        if spec.encoding == "bytes":
            return InputDescription("bytes", "string")
        prep = spec.preprocessing
        if prep is None:
            return InputDescription(spec.encoding, spec.dtype)
    elif isinstance(model.input, BytesInput):
        return InputDescription("bytes", "string")
    else:
        prep = model.input.preprocessing
    size = prep.size if prep.fixed_size else None
    max_side = None if prep.fixed_size else prep.max_side
    return InputDescription(
        "tensor", prep.dtype, size, prep.resize, prep.color, prep.layout, max_side
    )
