"""Gunicorn settings for the adapter (``gunicorn -c python:adapter.gunicorn_conf``).

Threads, not gevent: grpcio and gevent don't mix. No ``preload_app``: each
worker builds its app, and its gRPC channel, after the fork. Workers are
recycled after ``max_requests`` (plus jitter, so they don't all restart at
once); the heartbeat file lives in ``/dev/shm`` so a slow disk can't make a
busy worker look dead. Access lines are JSON on stdout
(:class:`adapter.accesslog.JsonLogger`). Every value comes from
:func:`adapter.config.load_server_settings` (``ADAPTER_*``).

Loading this module also prepares Prometheus' multiprocess directory
(``PROMETHEUS_MULTIPROC_DIR``) before any worker forks. The process settings
themselves live in :mod:`adapter.process`.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from adapter.config import export_metrics_dir, load_server_settings

__all__ = [
    "accesslog",
    "bind",
    "child_exit",
    "control_socket_disable",
    "errorlog",
    "graceful_timeout",
    "keepalive",
    "logger_class",
    "max_requests",
    "max_requests_jitter",
    "on_exit",
    "post_worker_init",
    "preload_app",
    "threads",
    "timeout",
    "worker_class",
    "worker_exit",
    "worker_tmp_dir",
    "workers",
    "wsgi_app",
]

# The directory this process made for the metrics, removed at exit (None: the operator's own).
_created_dir: str | None = None


def prepare_metrics_dir(given: str | None) -> str:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` at an empty directory; return it.

    ``given`` None: a fresh temporary directory, which :func:`on_exit`
    removes. Given: made if missing, and emptied of the files an earlier run
    left, whose counts would otherwise add to this run's. Runs once per
    process, at the first import (a reload on SIGHUP finds the module
    imported already, so the live workers' files stay).
    """
    global _created_dir
    if not given:
        _created_dir = tempfile.mkdtemp(prefix="adapter-metrics-")
        export_metrics_dir(_created_dir)
        return _created_dir
    # Imported only now: prometheus-client picks its multiprocess mode from the
    # variable when first imported, and a worker inherits what the master imported.
    from adapter.metrics import clear_dir

    clear_dir(Path(given))
    return given


_server = load_server_settings()
_metrics_dir = prepare_metrics_dir(_server.metrics_dir)

wsgi_app = "adapter.app:create_app()"
bind = [_server.bind]
# gthread, with each request read whole by the worker's poller before a
# thread takes it: a slow client holds a socket, not a thread.
worker_class = "adapter.worker.BufferingWorker"
workers = _server.workers
# More threads than requests worked on: the spare ones queue or refuse the
# overflow (adapter.admission), so it is never queued unseen in gunicorn.
threads = _server.pool_threads
# Also the heartbeat: a worker silent for this long is killed and replaced.
timeout = _server.timeout_s
graceful_timeout = _server.graceful_timeout_s
keepalive = _server.keepalive_s
max_requests = _server.max_requests
max_requests_jitter = _server.max_requests_jitter
preload_app = False
# tmpfs: the heartbeat is a chmod per loop; on a slow or overlay disk it can stall.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
logger_class = "adapter.accesslog.JsonLogger"
accesslog = "-"
errorlog = "-"
# gunicorn >= 25.1's admin socket ($HOME/.gunicorn/gunicorn.ctl): unused, and shared by every
# instance on a host; older versions ignore the name.
control_socket_disable = True


def child_exit(server: Any, worker: Any) -> None:
    """Gunicorn hook (master): drop a dead worker's live gauges from the metrics."""
    from adapter.metrics import worker_exited  # lazily: the master never loads the app

    worker_exited(worker.pid, _metrics_dir)


def post_worker_init(worker: Any) -> None:
    """Gunicorn hook (worker): on SIGTERM, stop listening at once (``gthread`` workers).

    The master closes its listening socket on SIGTERM, but each worker holds
    a copy until it exits: meanwhile the kernel still completes connections,
    which wait in the backlog and are reset at the end. Closing the worker's
    copy too makes them refused at once, so clients retry elsewhere. A worker
    recycled or scaled down alone closes only its own copy.
    """
    needed = ("accept", "handle_exit", "method_queue", "set_accept_enabled", "sockets")
    if not all(hasattr(worker, name) for name in needed):
        return  # not a gthread worker of a gunicorn version this knows
    accept, handle_exit = worker.accept, worker.handle_exit

    def _accept(listener: Any) -> None:
        if worker.alive:  # an event polled before the listener was closed
            accept(listener)

    def _close_listeners() -> None:
        worker.set_accept_enabled(False)
        for listener in worker.sockets:
            listener.close()

    def _on_term(signum: int, frame: Any) -> None:
        handle_exit(signum, frame)
        worker.method_queue.defer(_close_listeners)  # on the worker's loop, not in the handler

    worker.accept = _accept  # registered with the poller later, in run()
    signal.signal(signal.SIGTERM, _on_term)
    signal.siginterrupt(signal.SIGTERM, False)


def worker_exit(server: Any, worker: Any) -> None:
    """Gunicorn hook (worker, on its way out): export the traces it still holds."""
    from adapter import tracing

    tracing.stop()


def on_exit(server: Any) -> None:
    """Gunicorn hook (master, last): remove the metrics directory this process made."""
    if _created_dir is not None:
        shutil.rmtree(_created_dir, ignore_errors=True)
