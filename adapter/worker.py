"""gunicorn's ``gthread`` worker, with every request read whole before a thread sees it.

Stock ``gthread`` gives a connection to a thread as soon as it has bytes,
and the thread then blocks reading the head and the body: eight uploads
trickling at a byte a second hold eight threads, and everyone else waits.
Here the worker's poller (its event loop) reads each request itself,
non-blocking, into memory, as nginx does in front of an application
server; a thread gets the request only when it is all there, so a slow
client costs a socket and a buffer, never a thread. See ``docs/deploy.md``
("Slow clients and overload").

The poller also bounds what it holds:

- a request must arrive within ``read_timeout_s``, extended by a second
  for each ``read_min_rate`` bytes received (Apache's ``mod_reqtimeout``
  rule): past that, a 408 ``request-timeout`` problem;
- the bodies being read add up to at most ``read_buffer_bytes`` per worker:
  past that, a 503 ``overloaded`` problem with ``Retry-After``;
- requests with a body (the inference calls) in a thread's hands are at
  most ``threads`` worked on plus ``admission_queue`` waiting: a complete
  request past that is refused at once with the same 503, in the poller,
  for a fraction of what a thread would spend on it, and nothing queues
  unseen in gunicorn. The app's admission control (:mod:`adapter.admission`)
  orders and bounds the wait of the ones taken; the spare threads serve
  requests without a body, health checks above all, which are never refused.

Refusals are counted in ``tfs_adapter_requests_refused_total{reason}``.
A body over the upload limit is answered with the 413 ``payload-too-large``
problem as soon as its ``Content-Length`` (or its chunks) say so. What
:mod:`adapter.framing` cannot judge (a malformed head, conflicting lengths,
...) goes to a thread as received, and gunicorn answers it as it always
does. TLS and HTTP/2 prior knowledge (neither of which the adapter
configures) are left to stock ``gthread``.

Built on gunicorn 27's ``gthread`` (``enqueue_req``, ``handle``,
``load_wsgi``, ``murder_pending``, ``_keepalive_after``), hence the pin
in ``pyproject.toml``.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import gc
import io
import json
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from gunicorn.http.unreader import SocketUnreader  # type: ignore[import-untyped]
from gunicorn.workers.gthread import TConn, ThreadWorker  # type: ignore[import-untyped]

from adapter.admission import QUEUE_FULL
from adapter.framing import HAND_OFF, TOO_LARGE, RequestFraming, without_expect
from adapter.process import ServerSettings, keep_freed_memory

Buffer = bytes | bytearray  # what the poller reads into (collections.abc.Buffer from 3.12)

_RECV_BYTES = 256 * 1024
# Bytes handed out per read when the caller names no size (the head parser):
# what it does not use it gives back, so this keeps that give-back small.
_PIECE_BYTES = 64 * 1024
# How long a refused connection is drained after its answer, so that closing
# it with unread bytes does not reset it before the client reads the answer
# (a client sending a body over the limit reads the 413 only once it is sent).
_LINGER_S = 5.0
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# How often the poller tells gunicorn's arbiter it is alive (its timeout is 30 s or more).
_NOTIFY_EVERY_S = 0.5

# Why the poller refused a request (the label of tfs_adapter_requests_refused_total).
READ_TIMEOUT = "read_timeout"
BUFFER_FULL = "buffer_full"


class PrefetchedUnreader(SocketUnreader):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's socket unreader, serving bytes the poller read before the socket's.

    The poller's pieces are served in turn, each read a slice of them (one
    copy, where joining them first and gunicorn's buffer would make more for
    a large body); bytes given back with :meth:`unread` come first, the
    socket after the pieces run out.
    """

    def __init__(self, sock: socket.socket, pieces: list[Buffer], *, whole: bool) -> None:
        super().__init__(sock)
        self._pieces = collections.deque(memoryview(piece) for piece in pieces if len(piece))
        self.whole = whole  # the pieces hold the whole request (its framing was read)

    def read(self, size: int | None = None, read_ahead: int | None = None) -> bytes:
        if not self._pieces:
            return bytes(super().read(size, read_ahead))
        if size is not None and not isinstance(size, int):
            raise TypeError("size parameter must be an int or long.")
        if size == 0:
            return b""
        held: bytes = self.take_buffered()
        if size is None or size < 0:
            return held or self._take(_PIECE_BYTES)
        if len(held) >= size:
            self.buf.write(held[size:])
            return held[:size]
        taken = held + self._take(size - len(held))
        if len(taken) < size and not self._pieces:
            taken += bytes(super().read(size - len(taken), read_ahead))
        return taken

    def _take(self, size: int) -> bytes:
        """Up to ``size`` bytes from the pieces, in order."""
        taken: list[memoryview] = []
        while size > 0 and self._pieces:
            piece = self._pieces[0]
            taken.append(piece[:size])
            if len(piece) <= size:
                self._pieces.popleft()
            else:
                self._pieces[0] = piece[size:]
            size -= len(taken[-1])
        return taken[0].tobytes() if len(taken) == 1 else b"".join(taken)

    def spill(self) -> None:
        """Move what is left of the pieces (a pipelined request) to the buffer, where
        gunicorn looks for read-ahead before putting the connection back to the poller."""
        if self._pieces:
            self.buf.seek(0, io.SEEK_END)
            while self._pieces:
                self.buf.write(self._pieces.popleft())


@dataclass(eq=False)
class _Reading:
    """A connection whose request the poller is reading.

    Its bytes gather in ``data`` while the head (or a chunked body) is read.
    Once the head gives the request's length, ``end``, they are kept as
    ``pieces`` instead, each as received (never past ``end``): a large
    upload is then copied once, from the kernel, before a thread reads it.
    """

    conn: TConn
    framing: RequestFraming
    data: bytearray
    started: float
    continue_sent: bool = False
    closing_until: float | None = None  # refused: draining until then
    registered: bool = field(default=False)
    pieces: list[Buffer] | None = None
    end: int = 0
    received: int = 0  # bytes in pieces

    @property
    def held(self) -> int:
        """The bytes of the request received so far."""
        return len(self.data) if self.pieces is None else self.received

    def restart(self, data: bytearray, framing: RequestFraming) -> None:
        """Read the connection's next request, which starts with ``data``."""
        self.data, self.framing, self.pieces = data, framing, None
        self.started = time.monotonic()
        self.continue_sent = False


class _Cors:
    """The CORS fields of the worker's own answers (as :mod:`adapter.api.cors` gives the
    app's): a page on an allowed origin reads a 503's ``Retry-After`` too."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        from adapter.api.cors import EXPOSE_HEADERS

        self._on = bool(origins)
        self._any = origins == ("*",)
        self._allowed = frozenset(origin.encode("latin-1") for origin in origins)
        exposed = ", ".join(EXPOSE_HEADERS).encode("latin-1")
        self._rest = b"\r\nAccess-Control-Expose-Headers: " + exposed + b"\r\nVary: Origin\r\n"

    def fields(self, origin: bytes) -> bytes:
        """The fields for a request from ``origin`` (empty: none given)."""
        if not self._on:
            return b""
        origin = origin.lower()  # as the allowed ones are kept
        if not origin or not (self._any or origin in self._allowed):
            return b"Vary: Origin\r\n"
        return b"Access-Control-Allow-Origin: " + (b"*" if self._any else origin) + self._rest


class _Canned:
    """A problem answer the poller gives itself, rendered once.

    Only the request's path (the problem's ``instance``), its id and its
    CORS fields vary, so a refusal under a flood costs a few byte joins, not
    a JSON document and a head built field by field.
    """

    def __init__(self, problem: Any, cors: _Cors, *, close: bool = True) -> None:
        from adapter.api.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE

        document = json.dumps(
            {
                "type": PROBLEM_TYPE_BASE + problem.slug,
                "title": problem.title,
                "status": problem.status,
                "detail": problem.detail,
            }
        )
        self._body_start = (document[:-1] + ', "instance": ').encode()
        fields = {
            "Content-Type": PROBLEM_CONTENT_TYPE,
            "Cache-Control": "no-store",
            **({"Connection": "close"} if close else {}),
            **problem.headers,
        }
        status = f"HTTP/1.1 {problem.status} {HTTPStatus(problem.status).phrase}\r\n"
        lines = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        self._status = status.encode("latin-1")
        self._fields = (lines + "X-Request-ID: ").encode("latin-1")
        self._cors = cors

    def render(self, framing: RequestFraming) -> bytes:
        """The whole answer to the request whose head ``framing`` has read (if it has):
        its path (``*`` if not read yet) and its valid ``X-Request-ID`` or a fresh one."""
        from adapter.api.context import valid_request_id

        target = framing.target
        path = "*" if target is None else target.split(b"?", 1)[0].decode("latin-1")
        request_id = valid_request_id(framing.request_id.decode("latin-1")).encode()
        body = b"".join(
            (self._body_start, json.dumps(path).encode(), b', "request_id": "', request_id, b'"}')
        )
        length = str(len(body)).encode()
        return b"".join(
            (
                self._status,
                self._cors.fields(framing.origin),
                self._fields,
                request_id,
                b"\r\nContent-Length: ",
                length,
                b"\r\n\r\n",
                body,
            )
        )


class _Answers:
    """The poller's own answers (made after the fork: the app's modules load there)."""

    def __init__(self, cors_origins: tuple[str, ...]) -> None:
        from adapter.api import problems
        from adapter.exceptions import Overloaded

        cors = _Cors(cors_origins)
        overloaded = problems.from_exception(Overloaded.at_capacity())
        self.timed_out = _Canned(problems.RequestTimeout(), cors)
        self.too_large = _Canned(problems.PayloadTooLarge.over_limit(), cors)
        self.overloaded = _Canned(overloaded, cors)
        self.overloaded_kept_alive = _Canned(overloaded, cors, close=False)


class BufferingWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread`` whose poller reads each request whole first (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server_settings: ServerSettings | None = None
        self._reading: dict[TConn, _Reading] = {}
        self._buffered = 0  # bytes held by the requests being read
        self._bodies = 0  # requests with a body handed to the thread pool, not answered yet
        self._count_lock = threading.Lock()
        self._handling = threading.local()  # the connection a pool thread is handling
        self._answers: _Answers | None = None
        self._notified = 0.0  # when the arbiter last heard from this worker
        self._reading_shown = -1  # the requests_reading gauge's value
        self._refused: collections.Counter[str] = collections.Counter()  # since last counted
        self._chunk = memoryview(bytearray(_RECV_BYTES))  # where a head's reads land first
        cfg = self.cfg
        self._max_head = (
            cfg.limit_request_line + cfg.limit_request_fields * (cfg.limit_request_field_size + 2)
        ) or 1024 * 1024

    def init_process(self) -> None:
        from adapter.config import load_server_settings

        self.server_settings = load_server_settings()
        keep_freed_memory(self.server_settings.max_body_bytes)
        super().init_process()  # runs the worker

    # The poller's side -----------------------------------------------------------

    def enqueue_req(self, conn: TConn) -> None:
        """A connection has bytes: read its request in the poller (gthread: hand it to a thread)."""
        if self.cfg.is_ssl or _prior_knowledge(self.cfg, conn.client):
            self._submit(conn, None)
            return
        settings = self._settings()
        held = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        reading = _Reading(
            conn,
            RequestFraming(self._max_head, settings.max_body_bytes),
            bytearray(held),
            time.monotonic(),
        )
        self._buffered += len(held)
        self._reading[conn] = reading
        if not self._progress(reading):
            reading.registered = True
            self.poller.register(conn.sock, selectors.EVENT_READ, lambda _: self._readable(reading))

    def _readable(self, reading: _Reading) -> None:
        pieces = reading.pieces
        piece = b""
        try:
            if pieces is None:
                size = reading.conn.sock.recv_into(self._chunk)
            else:  # a piece of its own, never past the request's end
                piece = reading.conn.sock.recv(min(_RECV_BYTES, reading.end - reading.received))
                size = len(piece)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(reading)
            return
        if reading.closing_until is not None:
            if not size:
                self._close(reading)
            return  # draining a refused connection: discard
        if not size:  # the client went away before its request was complete
            self._close(reading)
            return
        if self._buffered + size > self._settings().read_buffer_limit:
            self._refuse(reading, self._poller_answers().overloaded, BUFFER_FULL)
            return
        self._buffered += size
        if pieces is None:
            reading.data += self._chunk[:size]
            self._progress(reading)
            return
        pieces.append(piece)
        reading.received += size
        if reading.received == reading.end:
            self._complete(reading, reading.end)

    def _progress(self, reading: _Reading) -> bool:
        """Hand the request to a thread if it is complete; True if it left the poller."""
        framing = reading.framing
        end = framing.advance(reading.data)
        if end is None:
            if (
                framing.expects_continue
                and not reading.continue_sent
                and len(reading.data) == framing.body_start
            ):
                reading.continue_sent = True
                _send(reading.conn.sock, CONTINUE)
            known_end = framing.known_end
            if known_end is not None:  # the rest of the body as pieces
                reading.pieces, reading.end = [reading.data], known_end
                reading.received = len(reading.data)
                reading.data = bytearray()
            return False
        if end == TOO_LARGE:  # answered now, without reading a byte more than needed
            self._refuse(reading, self._poller_answers().too_large, None)
            return True
        return self._complete(reading, end)

    def _complete(self, reading: _Reading, end: int) -> bool:
        """Hand the complete request (``end``: its length, or :data:`HAND_OFF`) to a
        thread, or refuse it if the threads have enough; True (it left the poller)."""
        framing = reading.framing
        if framing.has_body and self._bodies >= self._settings().admissible:
            # Only requests with a body: a GET (a health check above all) is
            # quick, and a liveness probe failing under load restarts a busy pod.
            if end == HAND_OFF:
                self._refuse(reading, self._poller_answers().overloaded, QUEUE_FULL)
            else:
                self._refuse_and_go_on(reading, end)
            return True
        pieces: list[Buffer] = [reading.data] if reading.pieces is None else reading.pieces
        self._forget(reading)
        if reading.continue_sent:  # the head is in the first piece
            pieces[0] = without_expect(pieces[0], framing.head_end)
        self._submit(reading.conn, pieces, whole=end != HAND_OFF, counted=framing.has_body)
        return True

    def _submit(
        self, conn: TConn, pieces: list[Buffer] | None, *, whole: bool = False,
        counted: bool = False,
    ) -> None:  # fmt: skip
        if pieces is not None:
            conn.data_ready = True  # gthread's wait for a first byte: done already
            conn.prefetched = pieces
            conn.whole = whole
        conn.counted = counted
        if counted:
            with self._count_lock:
                self._bodies += 1
        super().enqueue_req(conn)

    def _uncount(self, conn: TConn) -> None:
        """The request's place is free: its app has answered (or it never reached the app)."""
        if getattr(conn, "counted", False):
            conn.counted = False
            with self._count_lock:
                self._bodies -= 1

    def murder_pending(self) -> None:
        """gthread's sweep of idle connections (after every turn of the poller's loop),
        and of requests too slow to arrive; then the poller's metrics."""
        super().murder_pending()
        now = time.monotonic()
        settings = self._settings()
        for reading in list(self._reading.values()):
            if reading.closing_until is not None:
                if now >= reading.closing_until:
                    self._close(reading)
                continue
            allowed_s = settings.read_timeout_s + reading.held / settings.read_min_rate
            if now - reading.started > allowed_s:
                self._refuse(reading, self._poller_answers().timed_out, READ_TIMEOUT)
        self._count()

    def _refuse(self, reading: _Reading, answer: _Canned, reason: str | None) -> None:
        """Answer and close; drain what the client still sends, for a while, so the
        answer is not lost to a reset. ``reason``: the refusal metric's label (None: uncounted)."""
        if reason is not None:
            self._refused[reason] += 1
        sock = reading.conn.sock
        sent = _send(sock, answer.render(reading.framing))
        self._buffered -= reading.held
        reading.data, reading.pieces = bytearray(), None
        try:
            if sent:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            sent = False
        if not sent:
            self._close(reading)
            return
        reading.closing_until = time.monotonic() + _LINGER_S
        self._reading[reading.conn] = reading
        if not reading.registered:
            reading.registered = True
            self.poller.register(sock, selectors.EVENT_READ, lambda _: self._readable(reading))

    def _refuse_and_go_on(self, reading: _Reading, end: int) -> None:
        """Answer a complete request with a 503 and read the connection's next one:
        it was read whole, so the connection stays usable, and a client that
        retries spends no new connection on it."""
        self._refused[QUEUE_FULL] += 1
        answer = self._poller_answers().overloaded_kept_alive
        if not _send(reading.conn.sock, answer.render(reading.framing)):
            self._close(reading)
            return
        # Pieces never go past the request's end; bytes after it are the next request's.
        rest = reading.data[end:] if reading.pieces is None else bytearray()
        self._buffered -= reading.held - len(rest)
        reading.restart(rest, RequestFraming(self._max_head, self._settings().max_body_bytes))
        self._reading[reading.conn] = reading
        if not self._progress(reading) and not reading.registered:
            reading.registered = True
            self.poller.register(
                reading.conn.sock, selectors.EVENT_READ, lambda _: self._readable(reading)
            )

    def _count(self) -> None:
        """Bring the poller's metrics up to date: once per turn of its loop, not per
        request, so that a flood of refusals costs no lock and no write each."""
        from adapter import metrics

        if self._refused:
            for reason, refused in self._refused.items():
                metrics.request_refused(reason, refused)
            self._refused.clear()
        reading = sum(r.closing_until is None for r in self._reading.values())
        if reading != self._reading_shown:
            metrics.READING.set(reading)
            self._reading_shown = reading

    def notify(self) -> None:
        """Tell the arbiter this worker is alive: at most every 0.5 s, where gthread's loop
        calls it on every turn (a file's times set each time: once per piece of an upload)."""
        now = time.monotonic()
        if now - self._notified >= _NOTIFY_EVERY_S:
            self._notified = now
            super().notify()

    def _forget(self, reading: _Reading) -> None:
        """Take the connection off the poller; its buffer is no longer counted."""
        self._reading.pop(reading.conn, None)
        if reading.registered:
            reading.registered = False
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(reading.conn.sock)
        self._buffered -= reading.held
        reading.data, reading.pieces = bytearray(), None

    def _close(self, reading: _Reading) -> None:
        self._forget(reading)
        self.nr_conns -= 1
        reading.conn.close()

    def _poller_answers(self) -> _Answers:
        if self._answers is None:  # on first use: in the worker, after the fork
            self._answers = _Answers(self._settings().cors_origins)
        return self._answers

    def _settings(self) -> ServerSettings:
        if self.server_settings is None:  # init_process sets it; direct use in tests
            from adapter.config import load_server_settings

            self.server_settings = load_server_settings()
        return self.server_settings

    # A thread's side -----------------------------------------------------------

    def load_wsgi(self) -> None:
        """gunicorn's app, wrapped to free the request's place as soon as it has answered:
        before gunicorn writes the answer, so the client's next request, which may
        arrive right after, finds the place free."""
        super().load_wsgi()
        # What loading made (modules, the app, the models' specs) lives as long
        # as the worker: out of the collector's sight, a full collection no
        # longer walks it, stalling the poller and every thread for ~25 ms.
        gc.freeze()
        app: Callable[..., Any] = getattr(self, "wsgi")  # noqa: B009  # set by gunicorn

        def answered_then_freed(environ: dict[str, Any], start_response: Any) -> Any:
            try:
                return app(environ, start_response)
            finally:
                conn = getattr(self._handling, "conn", None)
                if conn is not None:
                    self._uncount(conn)

        self.wsgi = answered_then_freed

    def handle(self, conn: TConn) -> Any:
        """gthread's request handling, reading from the bytes the poller read first."""
        pieces = getattr(conn, "prefetched", None)
        if pieces is not None:
            conn.prefetched = None
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader = PrefetchedUnreader(conn.sock, pieces, whole=conn.whole)
        self._handling.conn = conn
        try:
            result = super().handle(conn)
        finally:
            self._handling.conn = None
            self._uncount(conn)  # if the app was never reached (a malformed request)
        unreader = getattr(conn.parser, "unreader", None)
        if isinstance(unreader, PrefetchedUnreader):
            unreader.spill()
        return result

    def _keepalive_after(self, conn: TConn, keepalive: bool) -> bool:
        """gthread's drain of a body the app left unread, before the connection is reused.

        gthread drains at most 64 KiB within 5 s and otherwise closes the
        connection it has just announced as kept alive, so a client's next
        request there is lost. A request read whole is in memory: draining
        it costs nothing and is never cut short.
        """
        unreader = getattr(conn.parser, "unreader", None)
        if keepalive and isinstance(unreader, PrefetchedUnreader) and unreader.whole:
            return bool(conn.parser.finish_body())
        return bool(super()._keepalive_after(conn, keepalive))


def _send(sock: socket.socket, payload: bytes) -> bool:
    """Send a small answer without blocking the poller; False if it did not all go."""
    try:
        return sock.send(payload) == len(payload)
    except OSError as error:
        if error.errno not in (errno.EAGAIN, errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
            raise
        return False


def _prior_knowledge(cfg: Any, client: Any) -> bool:
    """Whether gunicorn may take this connection as HTTP/2 from its first bytes."""
    try:
        from gunicorn.http2 import negotiation  # type: ignore[import-untyped]
    except ImportError:
        return False
    return bool(negotiation.prior_knowledge_allowed(cfg, client))
