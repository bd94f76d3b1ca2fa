"""The HTTP side of the REST API: a threaded HTTP/1.1 server that hands ``/v1/`` to the API.

One thread per connection (keep-alive), every answer with Content-Length;
other paths get an empty 404, as TF Serving's dispatcher leaves them
unhandled. :meth:`RestServer.stop` stops accepting and gives requests in
flight a grace period, for SIGTERM.
"""

from __future__ import annotations

import logging
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

log = logging.getLogger("adapter.modelserver")

_API = re.compile(r"/v1/.*", re.IGNORECASE)  # HttpRestApiHandler::kPathRegex


class Api(Protocol):
    """What the server serves: ``handle(method, path, body) -> (status, body)`` and ``close()``."""

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """Answer one request."""
        ...

    def close(self) -> None:
        """Release the API's resources."""
        ...


class _Handler(BaseHTTPRequestHandler):
    """One connection: HTTP/1.1 keep-alive, every response with Content-Length."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle and
    # the client's delayed ACK stall every response by about 40 ms.
    disable_nagle_algorithm = True
    server: RestServer
    timeout = 300  # seconds an idle keep-alive connection (or a stalled body) may hold a thread

    def _serve(self) -> None:
        """Read the body, answer /v1/ paths through the API, 404 anything else."""
        body = self._read_body()
        if body is None:
            return
        path = self.path.split("?", 1)[0]
        if _API.fullmatch(path):
            with self.server.tracking():
                code, payload = self.server.api.handle(self.command, path, body)
        else:
            code, payload = 404, b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.server.stopping.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None after answering 400."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunks()
            size = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(size) if size > 0 else b""
        except ValueError:
            self.close_connection = True
            self.send_error(400, "Bad request body framing")
            return None

    def _read_chunks(self) -> bytes:
        """A ``Transfer-Encoding: chunked`` body; ValueError if malformed."""
        chunks = []
        while (size := int(self.rfile.readline().split(b";")[0].strip(), 16)) > 0:
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():  # trailers
            pass
        return b"".join(chunks)

    def log_message(self, format: str, *args: Any) -> None:
        """Access logs at DEBUG, as TF Serving logs requests at VLOG(1)."""
        log.debug("REST %s " + format, self.address_string(), *args)


class RestServer(ThreadingHTTPServer):
    """A threaded HTTP server (one thread per connection) serving :class:`RestApi`."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, host: str, port: int, api: Api) -> None:
        """Bind ``host:port`` (IPv6 if ``host`` has a colon); raises OSError if it can't."""
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.api = api
        self.stopping = threading.Event()
        self._active = 0
        self._idle = threading.Condition()
        super().__init__((host.strip("[]"), port), _Handler)
        self._thread = threading.Thread(target=self.serve_forever, args=(0.1,), name="rest")

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is routine; anything else is logged with its traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            log.debug("REST connection from %s dropped", client_address)
        else:
            log.exception("REST connection from %s failed", client_address)

    def tracking(self) -> _InFlight:
        """A context that counts a request as in flight until it is answered."""
        return _InFlight(self)

    def stop(self, grace_seconds: float) -> None:
        """Stop accepting, give requests in flight ``grace_seconds`` to finish, close."""
        self.stopping.set()
        self.shutdown()
        self.server_close()
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, grace_seconds)
        self.api.close()


class _InFlight:
    """Counts one request on its server while inside the ``with`` block."""

    def __init__(self, server: RestServer) -> None:
        self._server = server

    def __enter__(self) -> None:
        with self._server._idle:
            self._server._active += 1

    def __exit__(self, *exc: object) -> None:
        with self._server._idle:
            self._server._active -= 1
            self._server._idle.notify_all()
