"""Configuration: environment variables (``ADAPTER_*``) and the model registry.

Read once, at start, and validated there: a bad value stops the process with
a message naming the variable or registry field, never a 500 later on. This is
the only module that reads the environment. Every default is written once,
on its dataclass field (the image limits' in the Rust core, through
:class:`adapter.imaging.Limits`); the loaders take it from there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapter import tracing
from adapter.exceptions import ConfigError
from adapter.imaging import Limits
from adapter.process import LOG_FORMATS, ServerSettings, available_cpus, default_workers
from adapter.registry import DEFAULT_TARGETS, RegistryEntry, check_target, load_registry
from adapter.serving.channel import TlsFiles

DEMO_REGISTRY = Path(__file__).parent / "demo" / "registry.yaml"
DEFAULT_TFS_TARGET = DEFAULT_TARGETS["grpc"]
DEFAULT_TFS_REST_TARGET = DEFAULT_TARGETS["rest"]

__all__ = [
    "ConfigError",
    "ServerSettings",
    "Settings",
    "export_metrics_dir",
    "load_registry",
    "load_server_settings",
    "load_settings",
]

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_IMAGE_LIMITS = Limits()


@dataclass(frozen=True)
class BackendPolicy:
    """How backends are called: retries, circuit breaker, keepalive, TLS (``ADAPTER_*``)."""

    retry_attempts: int = 3
    retry_backoff_s: float = 0.05
    retry_budget_ratio: float = 0.1  # retries at most this share of calls (plus a reserve)
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
    max_upload_bytes: int = _IMAGE_LIMITS.max_bytes
    max_image_pixels: int = _IMAGE_LIMITS.max_pixels
    max_image_side: int = _IMAGE_LIMITS.max_width
    grpc_max_message_bytes: int = 64 * 1024 * 1024
    max_batch_images: int = 16
    predict_concurrency: int = 8  # per-image Predicts in flight per worker
    # Admission control, per worker: inference requests worked on at once
    # (ADAPTER_THREADS), how many more may wait (default as many), and how
    # long at most (default a tenth of ADAPTER_DEADLINE_MS).
    max_in_flight: int = 4
    admission_queue: int = 4
    admission_wait_s: float = 0.5
    backend_policy: BackendPolicy = field(default_factory=BackendPolicy)
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # empty: no key needed
    # Browsers on these origins may call the API (adapter.api.cors): () is
    # off, ("*",) any origin (only without API keys).
    cors_origins: tuple[str, ...] = ()
    cors_max_age_s: int = 600  # how long a browser may reuse a preflight's answer
    demo_page: bool = True  # the demo page at / and /demo (adapter.api.demo)
    # OpenTelemetry (adapter.tracing): the exporters, () when traces are off.
    trace_exporters: tuple[str, ...] = ()
    otlp_protocol: str = "grpc"
    log_level: str = "INFO"
    log_format: str = "json"  # or "text": ``LEVEL logger request_id=<id> message``
    metrics_dir: str | None = None  # PROMETHEUS_MULTIPROC_DIR: the workers' shared metrics

    @property
    def image_limits(self) -> Limits:
        """The limits every uploaded image is checked against, from its header."""
        return Limits(
            max_bytes=self.max_upload_bytes,
            max_width=self.max_image_side,
            max_height=self.max_image_side,
            max_pixels=self.max_image_pixels,
        )


_APP = Settings(models={})
_POLICY = BackendPolicy()
_SERVER = ServerSettings()


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


def _env_int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    return int(_env_number(env, name, default, minimum))


def _env_ms(env: Mapping[str, str], name: str, default_s: float, minimum_ms: float) -> float:
    """A duration given in milliseconds, in seconds."""
    return _env_number(env, name, default_s * 1000, minimum_ms) / 1000


def _backend_policy(env: Mapping[str, str]) -> BackendPolicy:
    return BackendPolicy(
        retry_attempts=_env_int(env, "ADAPTER_RETRY_ATTEMPTS", _POLICY.retry_attempts, 1),
        retry_backoff_s=_env_ms(env, "ADAPTER_RETRY_BACKOFF_MS", _POLICY.retry_backoff_s, 1),
        retry_budget_ratio=_env_number(
            env, "ADAPTER_RETRY_BUDGET_PERCENT", _POLICY.retry_budget_ratio * 100, 0
        )
        / 100,
        breaker_failures=_env_int(env, "ADAPTER_BREAKER_FAILURES", _POLICY.breaker_failures, 1),
        breaker_cooldown_s=_env_number(
            env, "ADAPTER_BREAKER_COOLDOWN_S", _POLICY.breaker_cooldown_s, 0.1
        ),
        keepalive_ms=_env_int(env, "ADAPTER_GRPC_KEEPALIVE_MS", _POLICY.keepalive_ms, 10_000),
        tls=_tls(env),
    )


MIN_API_KEY_LENGTH = 16
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(env: Mapping[str, str]) -> str:
    level = (env.get("ADAPTER_LOG_LEVEL") or _APP.log_level).strip().upper()
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


# An origin as browsers send it: scheme, host and an optional port; no path.
_ORIGIN = re.compile(
    r"[a-z][a-z0-9+.-]*://(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?"
)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_CORS_ENV = "ADAPTER_CORS_ORIGINS"


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in _TRUE + _FALSE:
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in _TRUE


def _cors_origins(env: Mapping[str, str]) -> tuple[str, ...]:
    """``ADAPTER_CORS_ORIGINS``: exact origins, comma-separated, or ``*`` (any origin).

    Matched exactly, never as patterns: ``https://app.example.com`` does not
    let ``https://app.example.com.evil.test`` in.
    """
    origins = [origin.strip().lower() for origin in (env.get(_CORS_ENV) or "").split(",")]
    origins = [origin for origin in origins if origin]
    if origins == ["*"]:
        return ("*",)
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"{_CORS_ENV}: {origin!r} is not an origin (scheme://host[:port], no path, "
                "e.g. https://app.example.com), nor * on its own"
            )
    return tuple(dict.fromkeys(origins))


def _cors_with_keys(env: Mapping[str, str], api_keys: tuple[str, ...]) -> tuple[str, ...]:
    origins = _cors_origins(env)
    if origins == ("*",) and api_keys:
        raise ConfigError(
            f"{_CORS_ENV}=* lets any web page call the API with a key its visitor holds; "
            "with API keys on, list the origins allowed"
        )
    return origins


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``ADAPTER_*`` variables and the registry they point at (defaults: the demo)."""
    env = os.environ if environ is None else environ
    registry_path = Path(env.get("ADAPTER_MODELS") or DEMO_REGISTRY)
    deadline_s = _env_ms(env, "ADAPTER_DEADLINE_MS", _APP.deadline_s, 1)
    threads = _env_int(env, "ADAPTER_THREADS", _APP.max_in_flight, 1)
    api_keys = _api_keys(env)
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
        status_timeout_s=_env_ms(env, "ADAPTER_STATUS_TIMEOUT_MS", _APP.status_timeout_s, 1),
        max_upload_bytes=_env_int(env, "ADAPTER_MAX_UPLOAD_BYTES", _APP.max_upload_bytes, 1),
        max_image_pixels=_env_int(env, "ADAPTER_MAX_IMAGE_PIXELS", _APP.max_image_pixels, 1),
        max_image_side=_env_int(env, "ADAPTER_MAX_IMAGE_SIDE", _APP.max_image_side, 1),
        grpc_max_message_bytes=_env_int(
            env, "ADAPTER_GRPC_MAX_MESSAGE_BYTES", _APP.grpc_max_message_bytes, 4 * 2**20
        ),
        max_batch_images=_env_int(env, "ADAPTER_MAX_BATCH_IMAGES", _APP.max_batch_images, 1),
        predict_concurrency=_env_int(
            env, "ADAPTER_PREDICT_CONCURRENCY", _APP.predict_concurrency, 1
        ),
        max_in_flight=threads,
        admission_queue=_env_int(env, "ADAPTER_ADMISSION_QUEUE", threads, 0),
        admission_wait_s=_env_ms(env, "ADAPTER_ADMISSION_WAIT_MS", deadline_s / 10, 0),
        backend_policy=_backend_policy(env),
        api_keys=api_keys,
        cors_origins=_cors_with_keys(env, api_keys),
        cors_max_age_s=_env_int(env, "ADAPTER_CORS_MAX_AGE_S", _APP.cors_max_age_s, 0),
        demo_page=_env_bool(env, "ADAPTER_DEMO_PAGE", _APP.demo_page),
        trace_exporters=_trace_exporters(env),
        otlp_protocol=_otlp_protocol(env),
        log_level=_log_level(env),
        log_format=_log_format(env),
        metrics_dir=env.get(METRICS_DIR_ENV) or None,
    )


def _log_format(env: Mapping[str, str]) -> str:
    log_format = (env.get("ADAPTER_LOG_FORMAT") or _APP.log_format).strip().lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"ADAPTER_LOG_FORMAT must be json or text, got {log_format!r}")
    return log_format


def _trace_exporters(env: Mapping[str, str]) -> tuple[str, ...]:
    """Which exporters the traces go to; () (off) unless ``OTEL_*`` asks for them.

    ``OTEL_SDK_DISABLED=true`` turns them off; ``OTEL_TRACES_EXPORTER`` names
    them (``none``: recorded, not exported); without it, an OTLP endpoint
    variable means ``otlp``.
    """
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ()
    given = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not given:
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        return ("otlp",) if any(env.get(name) for name in endpoints) else ()
    names = tuple(name.strip() for name in given.split(",") if name.strip())
    unknown = sorted(set(names) - set(tracing.EXPORTERS))
    if unknown:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not one of "
            f"{', '.join(tracing.EXPORTERS)}"
        )
    return tuple(name for name in names if name != "none") or ("none",)


def _otlp_protocol(env: Mapping[str, str]) -> str:
    name = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
    if not env.get(name):
        name = "OTEL_EXPORTER_OTLP_PROTOCOL"
    protocol = env.get(name, "").strip().lower() or "grpc"
    if protocol not in tracing.PROTOCOLS:
        raise ConfigError(f"{name}: {protocol!r} is not one of {', '.join(tracing.PROTOCOLS)}")
    return protocol


def load_server_settings(
    environ: Mapping[str, str] | None = None, cpus: int | None = None
) -> ServerSettings:
    """Read the gunicorn settings; workers default to :func:`default_workers` of the
    available CPUs (``cpus``, default :func:`available_cpus`)."""
    env = os.environ if environ is None else environ
    cpus = available_cpus() if cpus is None else cpus
    max_requests = _env_int(env, "ADAPTER_MAX_REQUESTS", _SERVER.max_requests, 0)
    threads = _env_int(env, "ADAPTER_THREADS", _SERVER.threads, 1)
    jitter = _env_int(env, "ADAPTER_MAX_REQUESTS_JITTER", max_requests // 10, 0)
    return ServerSettings(
        bind=env.get("ADAPTER_BIND") or _SERVER.bind,
        workers=_env_int(env, "ADAPTER_WORKERS", default_workers(cpus), 1),
        threads=threads,
        admission_queue=_env_int(env, "ADAPTER_ADMISSION_QUEUE", threads, 0),
        max_body_bytes=_env_int(env, "ADAPTER_MAX_UPLOAD_BYTES", _SERVER.max_body_bytes, 1),
        read_timeout_s=_env_ms(env, "ADAPTER_READ_TIMEOUT_MS", _SERVER.read_timeout_s, 1),
        read_min_rate=_env_int(env, "ADAPTER_READ_MIN_RATE", _SERVER.read_min_rate, 1),
        read_buffer_bytes=_env_int(env, "ADAPTER_READ_BUFFER_BYTES", 0, 0),
        timeout_s=_env_int(env, "ADAPTER_WORKER_TIMEOUT_S", _SERVER.timeout_s, 1),
        graceful_timeout_s=_env_int(
            env, "ADAPTER_GRACEFUL_TIMEOUT_S", _SERVER.graceful_timeout_s, 0
        ),
        keepalive_s=_env_int(env, "ADAPTER_KEEPALIVE_S", _SERVER.keepalive_s, 0),
        max_requests=max_requests,
        max_requests_jitter=jitter if max_requests else 0,
        log_format=_log_format(env),
        metrics_dir=env.get(METRICS_DIR_ENV) or None,
        cors_origins=_cors_origins(env),
    )


def export_metrics_dir(directory: str) -> None:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` for this process and the workers it forks.

    The one write to the environment: prometheus-client reads the variable
    itself, in each worker, to put its values in files there, and the app's
    settings read it back in each worker (:func:`load_settings`).
    """
    os.environ[METRICS_DIR_ENV] = directory
