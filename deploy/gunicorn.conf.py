"""Gunicorn config for containers and `make run`: ``gunicorn -c deploy/gunicorn.conf.py``.

It re-exports :mod:`adapter.gunicorn_conf`, which lives in the package so an
installed wheel has it too (``gunicorn -c python:adapter.gunicorn_conf``).
What it sets, each from its ``ADAPTER_*`` variable:

- ``wsgi_app = "adapter.app:create_app()"``, ``bind`` (``ADAPTER_BIND``, 0.0.0.0:8080);
- ``worker_class = "adapter.worker.BufferingWorker"``: gunicorn's
  ``gthread`` (grpcio and gevent don't mix) whose poller reads each request
  whole before a thread takes it, so slow clients hold no thread
  (``ADAPTER_READ_TIMEOUT_MS``, ``ADAPTER_READ_MIN_RATE``,
  ``ADAPTER_READ_BUFFER_BYTES``); ``workers``
  (``ADAPTER_WORKERS``, default one per usable CPU, at least 2; the affinity
  mask and a cgroup CPU quota count) and ``threads``: ``ADAPTER_THREADS`` (4)
  working, ``ADAPTER_ADMISSION_QUEUE`` (as many) waiting for a place, and
  ``ADAPTER_THREADS`` more for requests without a body (health checks),
  which are never refused; past the first two, the poller answers a fast 503
  (``adapter.admission``, ``adapter.worker``);
- ``timeout`` (``ADAPTER_WORKER_TIMEOUT_S``, 30 s): the request and heartbeat
  timeout, with the heartbeat file in ``worker_tmp_dir = "/dev/shm"``;
  ``graceful_timeout`` (``ADAPTER_GRACEFUL_TIMEOUT_S``, 20 s) for in-flight
  requests after SIGTERM; ``keepalive`` (``ADAPTER_KEEPALIVE_S``, 5 s);
- ``max_requests`` / ``max_requests_jitter`` (``ADAPTER_MAX_REQUESTS``,
  2000, 0 never recycles; ``ADAPTER_MAX_REQUESTS_JITTER``, a tenth of it);
- ``preload_app = False``: gRPC channels are made after the fork;
- ``logger_class = "adapter.accesslog.JsonLogger"``, ``accesslog = "-"``:
  one JSON line per request on stdout; gunicorn's own lines on stderr, JSON
  unless ``ADAPTER_LOG_FORMAT=text``;
- ``PROMETHEUS_MULTIPROC_DIR``: a fresh temporary directory if unset
  (removed at exit), emptied of old files if set; the ``child_exit`` hook
  tells :mod:`adapter.metrics` that a worker died;
- ``post_worker_init``: on SIGTERM a worker closes its copy of the listening
  socket at once, so new connections are refused while requests in flight
  finish (not left in the backlog until the worker exits);
- ``control_socket_disable = True``: no ``gunicornc`` admin socket.
"""

from adapter.gunicorn_conf import *  # noqa: F403
