"""The client's keepalive pings against a server with gRPC's default ping policy (TF Serving's).

TF Serving keeps gRPC's server defaults: no more than one ping per 5 minutes
while no data flows, none on a connection without calls, and a GOAWAY
``too_many_pings`` on the third strike. A client pinging faster is cut off,
and its calls in flight fail with UNAVAILABLE. These tests run a tiny
in-process gRPC server with those defaults and slow calls spanning several
keepalive intervals:

* the adapter's channel options (pings only during calls, at most two without
  data in between) keep one connection through every call;
* the negative control, the same options but unlimited pings (also without
  calls), gets the connection closed in the same slow call: the positive test
  would notice if the options stopped protecting it.

gRPC core sends client pings at most about once a second whatever
``keepalive_time_ms`` says, so 1000 ms is the fastest schedule to test; at
that rate the unlimited client is cut off about 5 s into a call without data.
Both scenarios run concurrently (separate channels and connections to one
server) to keep the file near 12 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from adapter.serving.channel import ChannelSettings

METHOD = "/keepalive.test.Slow/Call"
KEEPALIVE_MS = 1000
SLOW_S = 6.0  # > 5 pings at 1 s: the unlimited client gets its GOAWAY about 5 s in
SCENARIO = (SLOW_S, SLOW_S, 0.0)


def _answer_after_a_pause(request: bytes, context: grpc.ServicerContext) -> bytes:
    """Sleep the number of seconds in the request (no data flows meanwhile); answer the peer."""
    time.sleep(float(request.decode()))
    return context.peer().encode()


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    """A gRPC server with every option at its default, as TF Serving's keepalive policy is."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "keepalive.test.Slow", {"Call": grpc.unary_unary_rpc_method_handler(_answer_after_a_pause)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(grace=None)


@dataclass
class Run:
    """What one channel saw: per call the status, its details and the server-side peer; states."""

    codes: list[grpc.StatusCode] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)
    states: list[grpc.ChannelConnectivity] = field(default_factory=list)

    @property
    def states_after_ready(self) -> list[grpc.ChannelConnectivity]:
        ready = grpc.ChannelConnectivity.READY
        return self.states[self.states.index(ready) :] if ready in self.states else []


def _run(port: int, options: list[tuple[str, Any]], pauses: tuple[float, ...]) -> Run:
    run = Run()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=options)
    channel.subscribe(run.states.append, try_to_connect=True)
    try:
        grpc.channel_ready_future(channel).result(timeout=5)
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
        for pause in pauses:
            try:
                peer = call(str(pause).encode(), timeout=SLOW_S + 4)
            except grpc.RpcError as exc:
                run.codes.append(exc.code())
                run.details.append(exc.details() or "")
                run.peers.append("")
            else:
                run.codes.append(grpc.StatusCode.OK)
                run.details.append("")
                run.peers.append(peer.decode())
        time.sleep(0.1)  # let a last connectivity change be reported
    finally:
        channel.unsubscribe(run.states.append)
        channel.close()
    return run


def _adapter_options() -> list[tuple[str, Any]]:
    return ChannelSettings(keepalive_time_ms=KEEPALIVE_MS).options()


def _unlimited_ping_options() -> list[tuple[str, Any]]:
    changed = {"grpc.http2.max_pings_without_data": 0, "grpc.keepalive_permit_without_calls": 1}
    return [(name, changed.get(name, value)) for name, value in _adapter_options()]


@pytest.fixture(scope="module")
def runs(server_port: int) -> dict[str, Run]:
    """The adapter's options and the unlimited-ping control, run side by side."""
    with futures.ThreadPoolExecutor(max_workers=2) as pool:
        adapter = pool.submit(_run, server_port, _adapter_options(), SCENARIO)
        control = pool.submit(_run, server_port, _unlimited_ping_options(), SCENARIO)
        return {"adapter": adapter.result(timeout=30), "control": control.result(timeout=30)}


def test_the_options_differ_from_the_control_only_in_ping_limits() -> None:
    adapter, control = dict(_adapter_options()), dict(_unlimited_ping_options())
    assert adapter["grpc.keepalive_time_ms"] == control["grpc.keepalive_time_ms"] == KEEPALIVE_MS
    differing = {name for name in adapter if adapter[name] != control[name]}
    assert differing == {"grpc.http2.max_pings_without_data", "grpc.keepalive_permit_without_calls"}


def test_adapter_keepalive_keeps_one_connection_through_slow_calls(runs: dict[str, Run]) -> None:
    run = runs["adapter"]
    assert run.codes == [grpc.StatusCode.OK] * len(SCENARIO)
    assert len(set(run.peers)) == 1, f"the connection was replaced: {run.peers}"
    assert run.states_after_ready == [grpc.ChannelConnectivity.READY], run.states


def test_control_with_unlimited_pings_is_cut_off(runs: dict[str, Run]) -> None:
    run = runs["control"]
    # The slow call in flight is lost to the server's GOAWAY too_many_pings ...
    assert run.codes[0] is grpc.StatusCode.UNAVAILABLE, run
    assert "too many pings" in run.details[0].lower().replace("_", " "), run.details
    # ... and the channel has to connect again for the next one.
    assert grpc.StatusCode.OK in run.codes[1:], run
    assert run.peers[1] and run.peers[1] != runs["adapter"].peers[0]
