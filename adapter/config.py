"""Configuration: environment variables (``ADAPTER_*``) and the model registry.

Read once, at start, and validated there: a bad value stops the process with
a message naming the variable or registry field, never a 500 later on. This is
the only module that reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from adapter.imaging import Preprocessing
from adapter.mapping.labels import LabelMap
from adapter.schemas.registry import REGISTRY_SCHEMA
from adapter.serving.client import ModelRef

DEMO_REGISTRY = Path(__file__).parent / "demo" / "registry.yaml"
DEFAULT_TFS_TARGET = "localhost:8500"


class ConfigError(Exception):
    """The environment or the registry file is invalid; the message says where."""


@dataclass(frozen=True)
class InputSpec:
    """How an upload becomes the model's input tensor (see the registry schema).

    ``preprocessing`` is set for ``encoding="tensor"``; ``"bytes"`` models get
    the original file.
    """

    tensor: str
    encoding: str = "tensor"
    preprocessing: Preprocessing | None = None


@dataclass(frozen=True)
class ModelConfig:
    """One public model: its task, the servable behind it, its input and outputs."""

    name: str
    task: str
    serving: ModelRef
    input: InputSpec
    outputs: Mapping[str, str]
    labels: LabelMap = field(default_factory=LabelMap)
    background_class: int | None = None
    deadline_s: float = 5.0
    description: str = ""


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with; built by :func:`load_settings`."""

    models: Mapping[str, ModelConfig]
    registry_path: Path = DEMO_REGISTRY
    tfs_target: str = DEFAULT_TFS_TARGET
    deadline_s: float = 5.0
    status_timeout_s: float = 1.0
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 64_000_000
    max_image_side: int = 16384
    grpc_max_message_bytes: int = 64 * 1024 * 1024
    log_level: str = "INFO"


def _env_number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``ADAPTER_*`` variables and the registry they point at (defaults: the demo)."""
    env = os.environ if environ is None else environ
    registry_path = Path(env.get("ADAPTER_MODELS") or DEMO_REGISTRY)
    deadline_s = _env_number(env, "ADAPTER_DEADLINE_MS", 5000, 1) / 1000
    target = (env.get("ADAPTER_TFS_TARGET") or DEFAULT_TFS_TARGET).strip()
    if not target:
        raise ConfigError("ADAPTER_TFS_TARGET is empty")
    return Settings(
        models=load_registry(registry_path, default_deadline_s=deadline_s),
        registry_path=registry_path,
        tfs_target=target,
        deadline_s=deadline_s,
        status_timeout_s=_env_number(env, "ADAPTER_STATUS_TIMEOUT_MS", 1000, 1) / 1000,
        max_upload_bytes=int(_env_number(env, "ADAPTER_MAX_UPLOAD_BYTES", 20 * 2**20, 1)),
        max_image_pixels=int(_env_number(env, "ADAPTER_MAX_IMAGE_PIXELS", 64_000_000, 1)),
        max_image_side=int(_env_number(env, "ADAPTER_MAX_IMAGE_SIDE", 16384, 1)),
        grpc_max_message_bytes=int(
            _env_number(env, "ADAPTER_GRPC_MAX_MESSAGE_BYTES", 64 * 2**20, 4 * 2**20)
        ),
        log_level=(env.get("ADAPTER_LOG_LEVEL") or "INFO").upper(),
    )


def load_registry(path: Path, *, default_deadline_s: float = 5.0) -> dict[str, ModelConfig]:
    """Parse and validate a registry file; label paths are relative to it."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read model registry {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"model registry {path} is not valid YAML: {exc}") from None
    try:
        data = REGISTRY_SCHEMA.load(raw if isinstance(raw, dict) else {"models": raw})
    except ValidationError as exc:
        raise ConfigError(f"model registry {path} is invalid: {exc.messages}") from None
    return {
        name: _model_config(name, entry, path.parent, default_deadline_s)
        for name, entry in data["models"].items()
    }


_PREPROCESSING_KEYS = (
    "resize",
    "shorter_side",
    "filter",
    "pad_value",
    "color",
    "layout",
    "dtype",
    "mean",
    "std",
    "scale",
    "offset",
)


def _preprocessing(name: str, spec: dict[str, Any]) -> Preprocessing:
    """The registry's input section as a validated :class:`Preprocessing`."""
    options: dict[str, Any] = {key: spec[key] for key in _PREPROCESSING_KEYS}
    for key in ("mean", "std", "scale", "offset"):
        values = options[key]
        if values is not None:
            options[key] = values[0] if len(values) == 1 else tuple(values)
    if spec["background"] is not None:
        options["background"] = tuple(spec["background"])
    try:
        return Preprocessing(tuple(spec["size"]), **options)
    except ValueError as exc:
        raise ConfigError(f"model {name}: input: {exc}") from None


def _model_config(
    name: str, entry: dict[str, Any], base: Path, default_deadline_s: float
) -> ModelConfig:
    serving, spec = entry["serving"], entry["input"]
    labels = LabelMap()
    if entry["labels"]:
        label_path = base / entry["labels"]
        try:
            labels = LabelMap.from_file(label_path)
        except OSError as exc:
            raise ConfigError(
                f"model {name}: cannot read labels {label_path}: {exc.strerror}"
            ) from None
    return ModelConfig(
        name=name,
        task=entry["task"],
        serving=ModelRef(
            name=serving["name"],
            signature=serving["signature"],
            version=serving["version"],
            version_label=serving["version_label"],
        ),
        input=InputSpec(
            tensor=spec["tensor"],
            encoding=spec["encoding"],
            preprocessing=_preprocessing(name, spec) if spec["encoding"] == "tensor" else None,
        ),
        outputs=dict(entry["outputs"]),
        labels=labels,
        background_class=entry["background_class"],
        deadline_s=(entry["deadline_ms"] / 1000) if entry["deadline_ms"] else default_deadline_s,
        description=entry["description"],
    )


@dataclass(frozen=True)
class ServerSettings:
    """How gunicorn runs the service (``ADAPTER_BIND``, ``ADAPTER_WORKERS``, ...)."""

    bind: str = "0.0.0.0:8080"
    workers: int = 2
    threads: int = 4
    timeout_s: int = 30
    graceful_timeout_s: int = 20


def load_server_settings(environ: Mapping[str, str] | None = None) -> ServerSettings:
    """Read the gunicorn settings; workers default to one per CPU (at least 2)."""
    env = os.environ if environ is None else environ
    cpus = os.cpu_count() or 1
    return ServerSettings(
        bind=env.get("ADAPTER_BIND") or "0.0.0.0:8080",
        workers=int(_env_number(env, "ADAPTER_WORKERS", max(2, cpus), 1)),
        threads=int(_env_number(env, "ADAPTER_THREADS", 4, 1)),
        timeout_s=int(_env_number(env, "ADAPTER_WORKER_TIMEOUT_S", 30, 1)),
        graceful_timeout_s=int(_env_number(env, "ADAPTER_GRACEFUL_TIMEOUT_S", 20, 0)),
    )
