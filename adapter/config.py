"""Configuration: environment variables (``ADAPTER_*``) and the model registry.

Read once, at start, and validated there: a bad value stops the process with
a message naming the variable or registry field, never a 500 later on. This is
the only module that reads the environment.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapter.exceptions import ConfigError
from adapter.registry import DEFAULT_TARGETS, RegistryEntry, check_target, load_registry
from adapter.serving.channel import TlsFiles

DEMO_REGISTRY = Path(__file__).parent / "demo" / "registry.yaml"
DEFAULT_TFS_TARGET = DEFAULT_TARGETS["grpc"]
DEFAULT_TFS_REST_TARGET = DEFAULT_TARGETS["rest"]

__all__ = ["ConfigError", "Settings", "load_registry", "load_settings"]


@dataclass(frozen=True)
class BackendPolicy:
    """How backends are called: retries, circuit breaker, keepalive, TLS (``ADAPTER_*``)."""

    retry_attempts: int = 3
    retry_backoff_s: float = 0.05
    breaker_failures: int = 5
    breaker_cooldown_s: float = 5.0
    keepalive_ms: int = 60_000
    tls: TlsFiles | None = None


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with; built by :func:`load_settings`."""

    models: Mapping[str, RegistryEntry]
    registry_path: Path = DEMO_REGISTRY
    tfs_target: str = DEFAULT_TFS_TARGET
    tfs_rest_target: str = DEFAULT_TFS_REST_TARGET
    deadline_s: float = 5.0
    status_timeout_s: float = 1.0
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 64_000_000
    max_image_side: int = 16384
    grpc_max_message_bytes: int = 64 * 1024 * 1024
    max_batch_images: int = 16
    backend_policy: BackendPolicy = field(default_factory=BackendPolicy)
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # empty: no key needed
    log_level: str = "INFO"
    log_format: str = "json"  # or "text": ``LEVEL logger request_id=<id> message``


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


def _read_pem(env: Mapping[str, str], name: str) -> bytes | None:
    path = env.get(name)
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None


def _tls(env: Mapping[str, str]) -> TlsFiles | None:
    """TLS to TF Serving: on with ``ADAPTER_TFS_TLS=true`` or a CA file; mTLS with a pair."""
    ca = _read_pem(env, "ADAPTER_TFS_TLS_CA")
    cert = _read_pem(env, "ADAPTER_TFS_TLS_CERT")
    key = _read_pem(env, "ADAPTER_TFS_TLS_KEY")
    enabled = (env.get("ADAPTER_TFS_TLS") or "").lower() in ("1", "true", "yes", "on")
    if (cert is None) != (key is None):
        raise ConfigError("ADAPTER_TFS_TLS_CERT and ADAPTER_TFS_TLS_KEY go together (mTLS)")
    if not (enabled or ca or cert):
        return None
    return TlsFiles(ca=ca, cert=cert, key=key, server_name=env.get("ADAPTER_TFS_TLS_SERVER_NAME"))


def _target(env: Mapping[str, str], name: str, default: str, *, rest: bool = False) -> str:
    target = (env.get(name) or default).strip()
    check_target(name, target, rest=rest)
    return target


def _backend_policy(env: Mapping[str, str]) -> BackendPolicy:
    return BackendPolicy(
        retry_attempts=int(_env_number(env, "ADAPTER_RETRY_ATTEMPTS", 3, 1)),
        retry_backoff_s=_env_number(env, "ADAPTER_RETRY_BACKOFF_MS", 50, 1) / 1000,
        breaker_failures=int(_env_number(env, "ADAPTER_BREAKER_FAILURES", 5, 1)),
        breaker_cooldown_s=_env_number(env, "ADAPTER_BREAKER_COOLDOWN_S", 5, 0.1),
        keepalive_ms=int(_env_number(env, "ADAPTER_GRPC_KEEPALIVE_MS", 60_000, 10_000)),
        tls=_tls(env),
    )


MIN_API_KEY_LENGTH = 16
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(env: Mapping[str, str]) -> str:
    level = (env.get("ADAPTER_LOG_LEVEL") or "INFO").strip().upper()
    if level not in LOG_LEVELS:
        choices = ", ".join(LOG_LEVELS)
        raise ConfigError(f"ADAPTER_LOG_LEVEL must be one of {choices}, got {level!r}")
    return level


def _api_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    """Keys from ``ADAPTER_API_KEYS`` (comma-separated) and ``ADAPTER_API_KEYS_FILE``
    (one per line; blank lines and ``#`` comments skipped). Never echoed in errors."""
    keys = [key.strip() for key in (env.get("ADAPTER_API_KEYS") or "").split(",")]
    path = env.get("ADAPTER_API_KEYS_FILE")
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8-sig").splitlines()  # a BOM is no key
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"ADAPTER_API_KEYS_FILE: cannot read {path}: {exc}") from None
        keys += [line.strip() for line in lines if not line.lstrip().startswith("#")]
    keys = [key for key in keys if key]
    for number, key in enumerate(keys, 1):
        # Visible ASCII: clients encode other header characters differently (UTF-8, latin-1).
        if len(key) < MIN_API_KEY_LENGTH or not (key.isascii() and key.isprintable()) or " " in key:
            raise ConfigError(
                f"API key {number} is invalid: keys are at least {MIN_API_KEY_LENGTH} "
                "visible ASCII characters, without spaces"
            )
    return tuple(dict.fromkeys(keys))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``ADAPTER_*`` variables and the registry they point at (defaults: the demo)."""
    env = os.environ if environ is None else environ
    registry_path = Path(env.get("ADAPTER_MODELS") or DEMO_REGISTRY)
    deadline_s = _env_number(env, "ADAPTER_DEADLINE_MS", 5000, 1) / 1000
    defaults = {
        "grpc": _target(env, "ADAPTER_TFS_TARGET", DEFAULT_TFS_TARGET),
        "rest": _target(env, "ADAPTER_TFS_REST_TARGET", DEFAULT_TFS_REST_TARGET, rest=True),
    }
    return Settings(
        models=load_registry(registry_path, default_deadline_s=deadline_s, targets=defaults),
        registry_path=registry_path,
        tfs_target=defaults["grpc"],
        tfs_rest_target=defaults["rest"],
        deadline_s=deadline_s,
        status_timeout_s=_env_number(env, "ADAPTER_STATUS_TIMEOUT_MS", 1000, 1) / 1000,
        max_upload_bytes=int(_env_number(env, "ADAPTER_MAX_UPLOAD_BYTES", 20 * 2**20, 1)),
        max_image_pixels=int(_env_number(env, "ADAPTER_MAX_IMAGE_PIXELS", 64_000_000, 1)),
        max_image_side=int(_env_number(env, "ADAPTER_MAX_IMAGE_SIDE", 16384, 1)),
        grpc_max_message_bytes=int(
            _env_number(env, "ADAPTER_GRPC_MAX_MESSAGE_BYTES", 64 * 2**20, 4 * 2**20)
        ),
        max_batch_images=int(_env_number(env, "ADAPTER_MAX_BATCH_IMAGES", 16, 1)),
        backend_policy=_backend_policy(env),
        api_keys=_api_keys(env),
        log_level=_log_level(env),
        log_format=_log_format(env),
    )


@dataclass(frozen=True)
class ServerSettings:
    """How gunicorn runs the service (``ADAPTER_BIND``, ``ADAPTER_WORKERS``, ...).

    ``max_requests`` 0 never recycles a worker; ``log_format`` is shared with
    :attr:`Settings.log_format` (gunicorn's own lines follow it too).
    """

    bind: str = "0.0.0.0:8080"
    workers: int = 2
    threads: int = 4
    timeout_s: int = 30
    graceful_timeout_s: int = 20
    keepalive_s: int = 5
    max_requests: int = 2000
    max_requests_jitter: int = 200
    log_format: str = "json"


CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_cpu_limit(root: Path) -> float | None:
    """The container's CPU quota in CPUs (cgroup v2 ``cpu.max``, else v1), None if unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def available_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup quota (rounded up)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


def default_workers(cpus: int) -> int:
    """One worker per CPU, at least 2 (one can restart while the other serves)."""
    return max(2, cpus)


LOG_FORMATS = ("json", "text")


def _log_format(env: Mapping[str, str]) -> str:
    log_format = (env.get("ADAPTER_LOG_FORMAT") or "json").strip().lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"ADAPTER_LOG_FORMAT must be json or text, got {log_format!r}")
    return log_format


def load_server_settings(
    environ: Mapping[str, str] | None = None, cpus: int | None = None
) -> ServerSettings:
    """Read the gunicorn settings; workers default to :func:`default_workers` of the
    available CPUs (``cpus``, default :func:`available_cpus`)."""
    env = os.environ if environ is None else environ
    cpus = available_cpus() if cpus is None else cpus
    max_requests = int(_env_number(env, "ADAPTER_MAX_REQUESTS", 2000, 0))
    jitter = int(_env_number(env, "ADAPTER_MAX_REQUESTS_JITTER", max_requests // 10, 0))
    return ServerSettings(
        bind=env.get("ADAPTER_BIND") or "0.0.0.0:8080",
        workers=int(_env_number(env, "ADAPTER_WORKERS", default_workers(cpus), 1)),
        threads=int(_env_number(env, "ADAPTER_THREADS", 4, 1)),
        timeout_s=int(_env_number(env, "ADAPTER_WORKER_TIMEOUT_S", 30, 1)),
        graceful_timeout_s=int(_env_number(env, "ADAPTER_GRACEFUL_TIMEOUT_S", 20, 0)),
        keepalive_s=int(_env_number(env, "ADAPTER_KEEPALIVE_S", 5, 0)),
        max_requests=max_requests,
        max_requests_jitter=jitter if max_requests else 0,
        log_format=_log_format(env),
    )
