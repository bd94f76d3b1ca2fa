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

from adapter.imaging import Limits

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
    ``threads`` is how many inference requests a worker works on at once
    (admission control, :mod:`adapter.admission`); :attr:`pool_threads` how
    many threads gunicorn gives it.
    """

    bind: str = "0.0.0.0:8080"
    workers: int = 2
    threads: int = 4
    admission_queue: int = 4
    # The buffering worker (adapter.worker): each request read whole in the
    # poller, within read_timeout_s plus a second per read_min_rate bytes,
    # bodies up to max_body_bytes (the upload limit), read_buffer_bytes of
    # them at once (0: four bodies of the largest size).
    max_body_bytes: int = Limits.max_bytes
    read_timeout_s: float = 10.0
    read_min_rate: int = 16 * 1024
    read_buffer_bytes: int = 0
    timeout_s: int = 30
    graceful_timeout_s: int = 20
    keepalive_s: int = 5
    max_requests: int = 2000
    max_requests_jitter: int = 200
    log_format: str = "json"
    # ADAPTER_CORS_ORIGINS, for the answers the worker gives itself (a 503 when
    # full, a 408, a 413): a page on an allowed origin reads them too.
    cors_origins: tuple[str, ...] = ()
    metrics_dir: str | None = None

    @property
    def admissible(self) -> int:
        """Inference requests a worker holds: ``threads`` at work, ``admission_queue`` waiting."""
        return self.threads + self.admission_queue

    @property
    def read_buffer_limit(self) -> int:
        """Bytes of requests a worker's poller may hold at once."""
        return self.read_buffer_bytes or 4 * self.max_body_bytes

    @property
    def pool_threads(self) -> int:
        """gunicorn's threads per worker: ``threads`` working, ``admission_queue``
        waiting for a place, and ``threads`` more that answer health checks and
        refuse the overflow with a fast 503 while all the others are busy."""
        return self.admissible + self.threads


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


# glibc's mallopt() parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit


def keep_freed_memory(largest_bytes: int) -> bool:
    """Let this process reuse the memory of the requests it has answered; False if
    the C library is not glibc (musl has no ``mallopt``): nothing changes then.

    Each large request buffer (an upload's pieces, its image, the tensor) is
    allocated fresh: by default glibc maps one over 128 KiB from the kernel
    and unmaps it when freed, and gives a thread's arena back with
    ``madvise`` as it shrinks, so every request pays a page fault per 4 KiB
    again (a 2.8 MB photo's copies, about 5 ms of a worker's CPU in 25).
    Here buffers up to ``largest_bytes`` (capped at glibc's 32 MiB) come
    from the heap, and up to twice that stays mapped when free, to be
    reused: a worker's RSS holds at its high-water mark instead of
    breathing with each upload, and the mark is bounded by the requests in
    flight.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    threshold = min(max(largest_bytes, 128 * 1024), _MMAP_THRESHOLD_MAX)
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 2 * threshold)
    )
