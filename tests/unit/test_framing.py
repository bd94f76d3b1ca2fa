"""Where a request ends: the buffering worker's framing, fed a byte at a time like a slow client."""

from __future__ import annotations

import pytest

from adapter.framing import HAND_OFF, TOO_LARGE, RequestFraming, without_expect

HEAD = b"POST /v1/models/digits/detect HTTP/1.1\r\nHost: a\r\n"


def _feed(request: bytes, max_body: int = 1000) -> tuple[int | None, RequestFraming]:
    """Feed ``request`` one byte at a time; the first verdict that is not None."""
    framing = RequestFraming(max_head=4096, max_body=max_body)
    data = bytearray()
    for byte in request:
        data.append(byte)
        verdict = framing.advance(data)
        if verdict is not None:
            return verdict, framing
    return None, framing


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
        HEAD + b"Content-Length: 5\r\n\r\nhello",
        HEAD + b"content-length:5\r\n\r\nhello",
        HEAD + b"Content-Length: 0\r\n\r\n",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\n\r\n",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nTrailer: x\r\n\r\n",
    ],
)
def test_a_complete_request_is_seen_to_end_at_its_last_byte_and_not_before(
    request_bytes: bytes,
) -> None:
    verdict, _ = _feed(request_bytes)
    assert verdict == len(request_bytes)
    # Bytes after it (a pipelined request) are not part of it.
    framing = RequestFraming(4096, 1000)
    assert framing.advance(request_bytes + b"GET / HTTP/1.1\r\n") == len(request_bytes)


@pytest.mark.parametrize(
    "request_bytes",
    [
        HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello",  # conflicting lengths
        HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",  # smuggling-shaped
        HEAD + b"Transfer-Encoding: gzip\r\n\r\n",  # a coding gunicorn refuses
        HEAD + b"Content-Length: -1\r\n\r\n",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",  # not a chunk size
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY",  # no CRLF after the chunk
        b"NOT AN HTTP REQUEST\r\n\r\n",
        HEAD + b"Bad Header : x\r\n\r\n",
        HEAD + b"NoColon\r\n\r\n",
    ],
)
def test_what_gunicorn_must_judge_is_handed_off_as_soon_as_it_shows(request_bytes: bytes) -> None:
    verdict, _ = _feed(request_bytes)
    assert verdict == HAND_OFF


@pytest.mark.parametrize(
    "request_bytes",
    [
        HEAD + b"Content-Length: 1001\r\n\r\n",  # known from the head alone
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"x" * 1000 + b"\r\n1\r\n",
    ],
)
def test_a_body_past_the_upload_limit_is_too_large_before_it_is_read(request_bytes: bytes) -> None:
    verdict, _ = _feed(request_bytes)
    assert verdict == TOO_LARGE


def test_a_head_longer_than_the_limit_is_handed_off_before_its_end() -> None:
    framing = RequestFraming(max_head=100, max_body=10)
    assert framing.advance(HEAD + b"X-Pad: " + b"a" * 200) == HAND_OFF


def test_incomplete_requests_wait_for_more() -> None:
    framing = RequestFraming(4096, 1000)
    assert framing.advance(HEAD + b"Content-Length: 5\r\n\r\nhel") is None
    assert framing.has_body and framing.body_start == len(HEAD) + len(b"Content-Length: 5\r\n\r\n")


def test_expect_100_continue_is_noted_and_can_be_removed_from_the_head() -> None:
    request = HEAD + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"
    framing = RequestFraming(4096, 1000)
    assert framing.advance(request[:-2]) is None
    assert framing.expects_continue
    stripped = without_expect(request, framing.head_end)
    assert stripped == HEAD + b"Content-Length: 2\r\n\r\nhi"
    # HTTP/1.0 clients get no 100 Continue (RFC 9110 10.1.1).
    old = RequestFraming(4096, 1000)
    old.advance(request.replace(b"HTTP/1.1", b"HTTP/1.0")[:-2])
    assert not old.expects_continue


def test_the_head_names_its_target_and_request_id_for_the_workers_own_answers() -> None:
    verdict, framing = _feed(
        HEAD + b"X-Request-ID:  abc-1 \r\nOrigin: https://a.test\r\nContent-Length: 1\r\n\r\nx"
    )
    assert verdict is not None and verdict > 0
    assert framing.target == b"/v1/models/digits/detect"
    assert framing.request_id == b"abc-1"
    assert framing.origin == b"https://a.test"  # for the answer's CORS fields
    _, unnamed = _feed(b"GET /healthz?verbose=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert (unnamed.target, unnamed.request_id, unnamed.origin) == (b"/healthz?verbose=1", b"", b"")
    _, partial = _feed(HEAD)  # the head is not complete: nothing named yet
    assert partial.target is None


def test_the_request_id_field_is_the_one_the_app_reads() -> None:
    from adapter.api.context import HEADER
    from adapter.framing import REQUEST_ID_FIELD

    assert HEADER.lower().encode() == REQUEST_ID_FIELD
