"""Slow and odd clients under real gunicorn: the buffering worker reads requests in its poller."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from adapter.modelserver.testing import ModelServer
from tests.contract import check
from tests.e2e.backends import SAMPLES
from tests.helpers import adapter_under_gunicorn

DIGITS = (SAMPLES / "digits.jpg").read_bytes()
PATH = "/v1/models/digits/detect"
READ_TIMEOUT_MS = 3000
MAX_UPLOAD = 400_000
READ_BUFFER = 600_000
SITE = "https://app.example.com"  # the one origin whose pages may call it (CORS)


@pytest.fixture(scope="module")
def url(model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The adapter under gunicorn, one worker with the default 4 (+ spare) threads."""
    env = {
        "ADAPTER_READ_TIMEOUT_MS": str(READ_TIMEOUT_MS),
        "ADAPTER_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "ADAPTER_READ_BUFFER_BYTES": str(READ_BUFFER),
        "ADAPTER_LOG_LEVEL": "WARNING",
        "ADAPTER_CORS_ORIGINS": SITE,
    }
    log = tmp_path_factory.mktemp("slow-clients") / "gunicorn.log"
    with adapter_under_gunicorn(model_server.target, env, log) as (base, _):
        yield base


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _head(length: int, *extra: str) -> bytes:
    fields = "".join(f"{field}\r\n" for field in extra)
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: adapter\r\nContent-Type: image/jpeg\r\n"
        f"Content-Length: {length}\r\n{fields}\r\n"
    ).encode()


class _Answers:
    """HTTP responses read one at a time from a socket (bytes past one are kept for the next)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.data = sock, b""

    def _more(self) -> None:
        piece = self.sock.recv(65536)
        if not piece:
            raise ConnectionError(f"closed after {self.data[:200]!r}")
        self.data += piece

    def next(self) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, lower-case headers, body."""
        while b"\r\n\r\n" not in self.data:
            self._more()
        head, _, self.data = self.data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        length = int(headers["content-length"])
        while len(self.data) < length:
            self._more()
        body, self.data = self.data[:length], self.data[length:]
        return int(lines[0].split(" ")[1]), headers, body


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """The one response ``sock`` gets."""
    return _Answers(sock).next()


def _detect(url: str) -> tuple[int, float]:
    began = time.perf_counter()
    response = requests.post(url + PATH, files={"image": ("d.jpg", DIGITS)}, timeout=15)
    return response.status_code, time.perf_counter() - began


def _refused(url: str, reason: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    line = f'tfs_adapter_requests_refused_total{{reason="{reason}"}} '
    return sum(float(row.rsplit(" ", 1)[1]) for row in text.splitlines() if row.startswith(line))


@pytest.mark.slow
def test_eight_slow_uploads_and_slow_heads_do_not_keep_others_waiting(url: str) -> None:
    before = _refused(url, "read_timeout")
    uploads = [_connect(url) for _ in range(8)]
    heads = [_connect(url) for _ in range(8)]
    for number, sock in enumerate(uploads):
        origin = "https://elsewhere.example.com" if number % 2 else SITE
        sock.sendall(_head(len(DIGITS), f"X-Request-ID: slow-{number}", f"Origin: {origin}"))
    for sock in heads:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
    stop_trickling = threading.Event()

    def trickle() -> None:  # a byte a second on each
        while not stop_trickling.wait(1.0):
            for sock in uploads + heads:
                with contextlib.suppress(OSError):
                    sock.send(b"x")

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        time.sleep(1.2)
        for _ in range(5):  # one after another: each answered within a second
            status, seconds = _detect(url)
            assert status == 200 and seconds < 1.0, (status, seconds)
        health = requests.get(f"{url}/healthz", timeout=5)
        assert health.status_code == 200
        # The slow ones time out with a 408 problem, past the read timeout.
        for number, sock in enumerate(uploads + heads):
            sock.settimeout(READ_TIMEOUT_MS / 1000 + 5)
            status, headers, body = _answer(sock)
            assert status == 408
            assert headers["connection"] == "close"
            problem = json.loads(body)
            assert problem["type"].endswith("/request-timeout")
            # It names the request as far as its head was read: path and id, or neither.
            assert problem["request_id"] == headers["x-request-id"]
            assert "origin" in headers["vary"].lower()
            if number < len(uploads):
                assert (problem["instance"], problem["request_id"]) == (PATH, f"slow-{number}")
                # Readable by a page on the allowed origin only.
                allowed = headers.get("access-control-allow-origin")
                assert allowed == (None if number % 2 else SITE)
            else:
                assert problem["instance"] == "*" and len(problem["request_id"]) == 32
        check("POST", PATH, status, headers, body)
    finally:
        stop_trickling.set()
        trickler.join()
        for sock in uploads + heads:
            sock.close()
    assert _refused(url, "read_timeout") - before == 16


def test_a_client_waiting_for_100_continue_gets_it_before_it_sends_the_body(url: str) -> None:
    with _connect(url) as sock:
        sock.sendall(_head(len(DIGITS), "Expect: 100-continue"))
        sock.settimeout(1.0)  # curl waits a second for it before sending anyway
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.settimeout(10)
        sock.sendall(DIGITS)
        status, headers, body = _answer(sock)
    assert status == 200, body
    assert len(json.loads(body)["detections"]) == 8
    check("POST", PATH, status, headers, body)


def test_pipelined_and_chunked_requests_are_each_answered(url: str) -> None:
    chunked = (
        f"POST {PATH} HTTP/1.1\r\nHost: adapter\r\nContent-Type: image/jpeg\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    half = len(DIGITS) // 2
    for part in (DIGITS[:half], DIGITS[half:]):
        chunked += b"%x\r\n%s\r\n" % (len(part), part)
    chunked += b"0\r\n\r\n"
    plain = _head(len(DIGITS), "X-Request-ID: second") + DIGITS
    with _connect(url) as sock:
        sock.sendall(chunked + plain + b"GET /healthz HTTP/1.1\r\nHost: adapter\r\n\r\n")
        reader = _Answers(sock)
        answers = [reader.next() for _ in range(3)]
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert answers[1][1]["x-request-id"] == "second"
    assert len(json.loads(answers[0][2])["detections"]) == 8


def test_past_the_read_buffer_a_new_upload_is_refused_with_a_503_it_can_read(url: str) -> None:
    before = _refused(url, "buffer_full")
    holders = [_connect(url)]
    try:
        for sock in holders:  # 350 kB held of the 600 kB the worker buffers
            sock.sendall(_head(MAX_UPLOAD - 1) + b"\0" * 350_000)
        time.sleep(0.5)
        with _connect(url) as sock:
            # Answered and closed mid-send, maybe: the answer is still readable.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                origin = f"Origin: {SITE.upper()}"  # origins are matched without case
                sock.sendall(_head(MAX_UPLOAD - 1, origin) + b"\0" * (MAX_UPLOAD - 1))
            status, headers, body = _answer(sock)
        assert status == 503
        assert headers["retry-after"] == "1"
        # A page on the allowed origin reads it, Retry-After included.
        assert headers["access-control-allow-origin"] == SITE
        exposed = headers["access-control-expose-headers"].split(", ")
        assert "Retry-After" in exposed and "X-Request-ID" in exposed
        assert json.loads(body)["type"].endswith("/overloaded")
        check("POST", PATH, status, headers, body)
    finally:
        for sock in holders:
            sock.close()
    assert _refused(url, "buffer_full") - before >= 1
    # The held bytes are let go when their clients leave: uploads work again.
    time.sleep(0.5)
    assert _detect(url)[0] == 200


def test_a_connection_whose_large_body_went_unread_still_serves_its_next_request(url: str) -> None:
    # An unknown model is a 404 before the body is read; stock gthread drains at most 64 KiB
    # of it and then closes the connection it had just announced as kept alive.
    unread = _head(len(DIGITS)).replace(b"/models/digits/", b"/models/no-such-model/") + DIGITS
    with _connect(url) as sock:
        reader = _Answers(sock)
        sock.sendall(unread)
        status, headers, _ = reader.next()
        assert (status, headers.get("connection")) == (404, "keep-alive")
        sock.sendall(_head(len(DIGITS)) + DIGITS)
        status, _, body = reader.next()
    assert status == 200, body
