"""Gunicorn settings for the adapter (``gunicorn -c python:adapter.gunicorn_conf``).

Threads, not gevent: grpcio and gevent don't mix. No ``preload_app``: each
worker builds its app, and its gRPC channel, after the fork.
"""

from adapter.config import load_server_settings

_server = load_server_settings()

wsgi_app = "adapter.app:create_app()"
bind = [_server.bind]
workers = _server.workers
worker_class = "gthread"
threads = _server.threads
timeout = _server.timeout_s
graceful_timeout = _server.graceful_timeout_s
keepalive = 5
preload_app = False
accesslog = "-"
# The request id links an access line to the app's own log lines for that request.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" rid=%({x-request-id}o)s'
)

errorlog = "-"
