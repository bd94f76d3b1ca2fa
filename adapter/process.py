"""The serving process: how gunicorn runs the service, and how many CPUs it may use.

Plain data and a CPU count, no environment: :func:`adapter.config.load_server_settings`
reads ``ADAPTER_*`` into a :class:`ServerSettings`, and
:mod:`adapter.gunicorn_conf` hands it to gunicorn.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
LOG_FORMATS = ("json", "text")


@dataclass(frozen=True)
class ServerSettings:
    """How gunicorn runs the service (``ADAPTER_BIND``, ``ADAPTER_WORKERS``, ...).

    ``workers`` defaults to :func:`default_workers` of :func:`available_cpus`;
    ``max_requests`` 0 never recycles a worker, and ``max_requests_jitter``
    defaults to a tenth of it; ``log_format`` is shared with the app's
    settings (gunicorn's own lines follow it too). ``metrics_dir`` is
    ``PROMETHEUS_MULTIPROC_DIR`` as given (None: gunicorn_conf makes one).
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
    metrics_dir: str | None = None


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
