"""Where an HTTP/1.1 request ends, judged from the bytes received so far.

The buffering worker (:mod:`adapter.worker`) reads each request whole
before a thread sees it, so it must know when a request is complete: after
the head's blank line, plus ``Content-Length`` bytes or the last chunk of a
chunked body. A body past the upload limit (by its
``Content-Length``, or as its chunks add up) is :data:`TOO_LARGE`, known
before it is read. Anything else it cannot judge (a malformed head,
conflicting lengths, an unknown transfer coding) is handed to gunicorn as
received, whose parser answers it as it always does (a 400): this module
never decides what a request means, only where it ends.

Incremental: :meth:`RequestFraming.advance` resumes where the last call
stopped, so a body arriving in many pieces is scanned once.
"""

from __future__ import annotations

import re

# advance()'s verdicts: a request gunicorn must judge itself; a body over the limit.
HAND_OFF = -1
TOO_LARGE = -2
_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP/\d\.\d")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_MAX_CHUNK_LINE = 8192
# The field naming the request's id (adapter.api.context.HEADER), noted for
# the answers the worker gives itself.
REQUEST_ID_FIELD = b"x-request-id"
ORIGIN_FIELD = b"origin"  # a browser's page's origin, for CORS


class RequestFraming:
    """The end of one request in a growing buffer (see :meth:`advance`).

    ``max_head`` bounds the head (request line and fields, as gunicorn's
    ``limit_request_*`` settings do), ``max_body`` the body (the upload
    limit): past the first the request is handed off, past the second it is
    :data:`TOO_LARGE`; neither is buffered.
    Once the head is read, ``expects_continue`` says whether the client waits
    for ``100 Continue`` before sending its body, and ``target`` and
    ``request_id`` hold the request line's target and the ``X-Request-ID``
    field's value (empty if none), and ``origin`` the ``Origin`` field's
    (empty if none), for an answer the worker gives itself.
    """

    def __init__(self, max_head: int, max_body: int) -> None:
        self.max_head, self.max_body = max_head, max_body
        self.head_end = -1  # offset of the blank line ending the head, once found
        self.expects_continue = False
        self.target: bytes | None = None
        self.request_id = b""
        self.origin = b""
        self._searched = 0  # where the search for the head's end resumes
        self._length = 0  # Content-Length, when not chunked
        self._chunked = False
        self._next_chunk = 0  # offset of the next chunk-size line
        self._chunked_total = 0

    @property
    def has_body(self) -> bool:
        """Whether the head announced a body (a length over 0, or chunks)."""
        return self._chunked or self._length > 0

    @property
    def body_start(self) -> int:
        """Where the body starts (-1 until the head is complete)."""
        return self.head_end + 4 if self.head_end >= 0 else -1

    @property
    def known_end(self) -> int | None:
        """The request's length once its head gave it (``Content-Length``), else None
        (the head is not complete, or the body is chunked)."""
        if self.head_end < 0 or self._chunked:
            return None
        return self.body_start + self._length

    def advance(self, data: bytes | bytearray) -> int | None:
        """The request's length in ``data`` once it is all there; None if more is needed.

        :data:`HAND_OFF` if the request is one gunicorn must judge itself,
        :data:`TOO_LARGE` once its body is known to pass ``max_body``.
        ``data`` must start with the request and only grow between calls;
        bytes past the returned length belong to a pipelined next request.
        """
        if self.head_end < 0:
            end = data.find(b"\r\n\r\n", max(0, self._searched - 3))
            if end < 0:
                if len(data) > self.max_head:
                    return HAND_OFF
                self._searched = len(data)
                return None
            self.head_end = end
            if not self._read_head(bytes(data[:end])):
                return HAND_OFF
            if self._length > self.max_body:
                return TOO_LARGE
        if self._chunked:
            return self._chunks(data)
        end = self.body_start + self._length
        return end if len(data) >= end else None

    def _read_head(self, head: bytes) -> bool:
        """Note the body's framing from the head's fields; False if gunicorn must judge."""
        lines = head.split(b"\r\n")
        if len(head) > self.max_head or not _REQUEST_LINE.fullmatch(lines[0]):
            return False
        self.target = lines[0].split(b" ", 2)[1]
        lengths: list[bytes] = []
        codings: list[bytes] = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                return False
            name, value = name.lower(), value.strip()
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings.extend(coding.strip().lower() for coding in value.split(b","))
            elif name == b"expect" and value.lower() == b"100-continue":
                self.expects_continue = lines[0].endswith(b"HTTP/1.1")
            elif name == REQUEST_ID_FIELD:
                self.request_id = value
            elif name == ORIGIN_FIELD:
                self.origin = value
        if codings:
            if lengths or codings[-1] != b"chunked":
                return False  # smuggling-shaped, or a coding gunicorn refuses
            self._chunked = True
            self._next_chunk = self.body_start
            return True
        if not lengths:
            return True  # no body
        if len(set(lengths)) != 1 or not lengths[0].isdigit():
            return False
        self._length = int(lengths[0])
        return True

    def _chunks(self, data: bytes | bytearray) -> int | None:
        position = self._next_chunk
        while True:
            line_end = data.find(b"\r\n", position)
            if line_end < 0:
                self._next_chunk = position
                return HAND_OFF if len(data) - position > _MAX_CHUNK_LINE else None
            size_text = bytes(data[position:line_end]).split(b";", 1)[0].strip(b" \t")
            if not _CHUNK_SIZE.fullmatch(size_text):
                return HAND_OFF
            size = int(size_text, 16)
            if size == 0:  # the last chunk; then trailer fields up to a blank line
                if data[line_end + 2 : line_end + 4] == b"\r\n":
                    return line_end + 4
                end = data.find(b"\r\n\r\n", line_end + 2)
                if end < 0:
                    self._next_chunk = position
                    return HAND_OFF if len(data) - line_end > self.max_head else None
                return end + 4
            total = self._chunked_total + size
            if total > self.max_body:
                return TOO_LARGE
            after = line_end + 2 + size + 2
            if len(data) < after:
                self._next_chunk = position
                return None
            if data[after - 2 : after] != b"\r\n":
                return HAND_OFF
            self._chunked_total, position = total, after


def without_expect(data: bytes | bytearray, head_end: int) -> bytes:
    """``data`` with its head's ``Expect: 100-continue`` field removed.

    For a request whose ``100 Continue`` was sent already: gunicorn would
    otherwise send a second one when a thread takes the request.
    """
    lines = bytes(data[:head_end]).split(b"\r\n")
    kept = [
        line
        for line in lines
        if not (
            line.partition(b":")[0].lower() == b"expect"
            and line.partition(b":")[2].strip().lower() == b"100-continue"
        )
    ]
    return b"\r\n".join(kept) + bytes(data[head_end:])
