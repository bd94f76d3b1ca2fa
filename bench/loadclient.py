"""A small closed-loop HTTP/1.1 load client: N keep-alive connections, one request each at a time.

Why not locust or a thread per client: the client shares the machine with
the server it measures, so its own cost per request must be tiny and its
clock honest. One asyncio loop on raw sockets sends a request prebuilt once
and reads the answer by ``Content-Length``: a few tens of µs of client CPU
per request, where ``requests`` in 48 threads spends about a millisecond
and, fighting over one GIL, adds tens of ms to every latency it reports.
Each answer's latency runs from the first byte sent to the last byte
received. Used by ``bench/load.py`` and the admission and soak tests.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    """One response: its status, latency, headers (lower-case names), body, and which request."""

    request: int  # index into the requests the run was given
    status: int
    seconds: float
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Outcome:
    """What a run got: every answer, every failure (a reset, a timeout, ...) and its length."""

    answers: list[Answer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def statuses(self) -> dict[int, int]:
        """How many answers of each status."""
        counts: dict[int, int] = {}
        for answer in self.answers:
            counts[answer.status] = counts.get(answer.status, 0) + 1
        return dict(sorted(counts.items()))


def request_bytes(
    url: str,
    body: bytes = b"",
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """A complete HTTP/1.1 request for ``url`` (path and query), sent as is every time."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    fields = {"Host": parts.netloc, "User-Agent": "tfs-adapter-loadclient", **(headers or {})}
    if body or method == "POST":
        fields["Content-Length"] = str(len(body))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode("latin-1") + b"\r\n" + body


def multipart(
    field_name: str, filename: str, content: bytes, content_type: str
) -> tuple[bytes, str]:
    """A multipart/form-data body with one file part, and its Content-Type."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[str, str], bytes, float]:
    began = time.perf_counter()
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise ValueError(f"an answer without Content-Length: {lines[0]}")
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body, time.perf_counter() - began


async def _client(
    host: str, port: int, requests: list[bytes], index: int, until: float,
    outcome: Outcome, timeout_s: float, keep_body: int, most: int | None,
) -> None:  # fmt: skip
    writer: asyncio.StreamWriter | None = None
    sent = 0
    while time.perf_counter() < until:
        if most is not None and len(outcome.answers) + len(outcome.failures) >= most:
            break
        which = (index + sent) % len(requests)
        request = requests[which]
        sent += 1
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), timeout_s
                )
            async with asyncio.timeout(timeout_s):  # no task per exchange, as wait_for makes
                status, headers, body, seconds = await _exchange(reader, writer, request)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError, ValueError) as error:  # fmt: skip
            outcome.failures.append(f"{type(error).__name__}: {error} (request {which})")
            if writer is not None:
                writer.close()
            writer = None
            continue
        kept = body if keep_body and len(outcome.answers) % keep_body == 0 else b""
        outcome.answers.append(Answer(which, status, seconds, headers, kept))
        if headers.get("connection", "").lower() == "close":
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def _run(
    url: str, requests: list[bytes], concurrency: int, seconds: float,
    timeout_s: float, keep_body: int, most: int | None,
) -> Outcome:  # fmt: skip
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    outcome = Outcome()
    start = time.perf_counter()
    until = start + seconds
    await asyncio.gather(
        *(
            _client(host, port, requests, index, until, outcome, timeout_s, keep_body, most)
            for index in range(concurrency)
        )
    )
    outcome.wall_s = time.perf_counter() - start
    return outcome


def run(
    url: str,
    requests: list[bytes],
    concurrency: int,
    seconds: float,
    *,
    timeout_s: float = 30.0,
    keep_body: int = 1,
    max_requests: int | None = None,
) -> Outcome:
    """``concurrency`` connections to ``url``'s host send ``requests`` in turn for ``seconds``.

    Each connection sends its next request when the last is answered (a
    closed loop), reconnecting after ``Connection: close`` or a failure,
    until ``seconds`` have passed or ``max_requests`` were answered or
    failed. Bodies are kept for every ``keep_body``-th answer (0: none).
    """
    # The collector is off while the clock runs: a full collection in this
    # process (pytest's, or the benchmark's, with thousands of answers kept)
    # pauses the loop for tens of ms, and every latency in flight would
    # report the client's pause as the server's.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return asyncio.run(
            _run(url, requests, concurrency, seconds, timeout_s, keep_body, max_requests)
        )
    finally:
        if collecting:
            gc.enable()
