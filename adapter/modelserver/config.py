"""Which models to serve: one base path, a directory of models, or a TF Serving config file.

A *source* answers "which models, where, under which version policy" each time
the poller asks, so ``--models_dir`` picks up model directories added later.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from adapter.exceptions import ConfigError  # one class for every unusable configuration


@dataclass(frozen=True)
class VersionPolicy:
    """Which on-disk versions to serve; the default is TF Serving's ``latest { num_versions: 1 }``.

    ``kind`` is ``latest`` (the ``num_versions`` highest), ``all`` or ``specific``
    (exactly ``versions``, those that exist on disk).
    """

    kind: str = "latest"
    num_versions: int = 1
    versions: frozenset[int] = field(default_factory=frozenset)

    def select(self, on_disk: Iterable[int]) -> set[int]:
        """Return the aspired versions among ``on_disk``."""
        found = sorted(set(on_disk), reverse=True)
        if self.kind == "all":
            return set(found)
        if self.kind == "specific":
            return {v for v in found if v in self.versions}
        return set(found[: max(1, self.num_versions)])


@dataclass(frozen=True)
class ModelConfig:
    """One served model: its name, base path (holding numeric version dirs), policy, labels."""

    name: str
    base_path: Path
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: Mapping[str, int] = field(default_factory=dict)


class ModelSource(Protocol):
    """Something that lists the models to serve; asked again on every poll."""

    def configs(self) -> list[ModelConfig]:
        """Return the current model configs."""
        ...


@dataclass
class StaticSource:
    """A fixed list of models (``--model_base_path`` or ``--model_config_file``)."""

    models: list[ModelConfig]

    def configs(self) -> list[ModelConfig]:
        """Return the fixed list."""
        return list(self.models)


@dataclass
class DirectorySource:
    """Every subdirectory of ``root`` is a model named after it (``--models_dir``)."""

    root: Path

    def configs(self) -> list[ModelConfig]:
        """Rescan ``root``; hidden entries and plain files are ignored; missing root → none."""
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except OSError:
            return []
        return [
            ModelConfig(name=e.name, base_path=Path(e.path))
            for e in entries
            if not e.name.startswith(".") and e.is_dir()
        ]


def single_model(name: str, base_path: str) -> StaticSource:
    """The source for ``--model_name NAME --model_base_path DIR`` (TF Serving's default mode)."""
    if not name:
        raise ConfigError("--model_name must not be empty")
    return StaticSource([ModelConfig(name=name, base_path=Path(base_path).resolve())])


def load_config_file(path: str) -> StaticSource:
    """Parse TF Serving's text-proto ``ModelServerConfig`` from ``path``.

    Supports ``model_config_list`` with ``name``, ``base_path`` (relative paths are
    resolved against the config file's directory), ``model_platform`` (empty or
    ``tensorflow``), ``model_version_policy`` and ``version_labels``.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config_path = Path(path).resolve()
    try:
        text = config_path.read_text(encoding="utf-8")
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except (OSError, text_format.ParseError) as exc:
        raise ConfigError(f"Invalid protobuf file: '{path}': {exc}") from None
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"{path}: only model_config_list is supported")
    models = [_model_from_proto(c, config_path.parent) for c in config.model_config_list.config]
    names = [m.name for m in models]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"Illegal to list model {name} multiple times in config list")
    return StaticSource(models)


def _model_from_proto(proto: object, config_dir: Path) -> ModelConfig:
    """Convert one ``ModelConfig`` proto, validating name, path and platform."""
    name: str = proto.name  # type: ignore[attr-defined]
    if not name:
        raise ConfigError("every model config needs a name")
    if not proto.base_path:  # type: ignore[attr-defined]
        raise ConfigError(f"model {name}: base_path is required")
    platform = proto.model_platform  # type: ignore[attr-defined]
    if platform not in ("", "tensorflow"):
        raise ConfigError(f"model {name}: model_platform {platform!r} is not supported")
    base = Path(proto.base_path)  # type: ignore[attr-defined]
    if not base.is_absolute():
        base = config_dir / base
    labels = dict(proto.version_labels)  # type: ignore[attr-defined]
    policy = _policy_from_proto(proto.model_version_policy)  # type: ignore[attr-defined]
    return ModelConfig(name=name, base_path=base.resolve(), policy=policy, labels=labels)


def _policy_from_proto(policy: object) -> VersionPolicy:
    """Convert a ``ServableVersionPolicy``; unset means ``latest { num_versions: 1 }``."""
    choice = policy.WhichOneof("policy_choice")  # type: ignore[attr-defined]
    if choice == "all":
        return VersionPolicy(kind="all")
    if choice == "specific":
        versions = frozenset(int(v) for v in policy.specific.versions)  # type: ignore[attr-defined]
        if not versions:
            raise ConfigError("specific version policy needs at least one version")
        return VersionPolicy(kind="specific", versions=versions)
    if choice == "latest":
        return VersionPolicy(num_versions=max(1, policy.latest.num_versions))  # type: ignore[attr-defined]
    return VersionPolicy()
