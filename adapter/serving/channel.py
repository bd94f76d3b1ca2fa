"""How the adapter's gRPC channels are made: targets, load balancing, limits, keepalive, TLS.

Every option here is set on purpose, for TF Serving on the other side:

* Targets: ``host:port``, ``dns:///host:port`` (a headless Kubernetes service:
  every pod's address), or a comma list of addresses. All use the
  ``round_robin`` policy, so calls spread over every resolved address instead
  of gRPC's default ``pick_first`` pinning one pod.
* Message limits are sized from the models' tensor shapes (see
  :func:`message_bytes`), never gRPC's 4 MB default.
* Keepalive pings only while calls are in flight, at most two without data in
  between: TF Serving runs gRPC's default server policy (pings no closer than
  5 minutes apart when no data flows, none on idle connections, 2 strikes),
  and a client that pings more is cut off with GOAWAY ``too_many_pings``.
* Reconnects back off from 100 ms to at most 2 s, so a restarted model server
  is found again within seconds.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from adapter.serving.protos import tensor_pb2

DT = tensor_pb2.DataType
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MIN_MESSAGE_BYTES = 4 * 1024 * 1024  # gRPC's own default: never go below it
_HEADROOM_BYTES = 64 * 1024  # the request's other fields, names, shapes

_ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})

# Upper bound of one element's size on the wire, whichever encoding the peer
# picks: tensor_content (itemsize) or the typed *_val fields, where small ints
# are varints (a negative int32 takes 10 bytes).
_WIRE_BYTES: dict[int, int] = {
    DT.DT_FLOAT: 4,
    DT.DT_DOUBLE: 8,
    DT.DT_HALF: 3,
    DT.DT_BOOL: 1,
    DT.DT_UINT8: 2,
    DT.DT_UINT16: 3,
    DT.DT_INT8: 10,
    DT.DT_INT16: 10,
    DT.DT_INT32: 10,
    DT.DT_INT64: 10,
    DT.DT_UINT32: 5,
    DT.DT_UINT64: 10,
}


@dataclass(frozen=True)
class TlsFiles:
    """PEM contents for TLS: the CA to trust (None: system roots), and a client pair for mTLS."""

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str | None = None  # overrides the name checked in the server certificate

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials these files describe."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


@dataclass(frozen=True)
class ChannelSettings:
    """Options of one channel; defaults as described in the module docstring."""

    max_send_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_receive_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    keepalive_time_ms: int = 60_000
    keepalive_timeout_ms: int = 20_000
    tls: TlsFiles | None = None

    def options(self) -> list[tuple[str, Any]]:
        """The gRPC channel arguments."""
        options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", self.max_send_bytes),
            ("grpc.max_receive_message_length", self.max_receive_bytes),
            ("grpc.keepalive_time_ms", self.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", self.keepalive_timeout_ms),
            ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.http2.max_pings_without_data", 2),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2_000),
            ("grpc.service_config", _ROUND_ROBIN),
        ]
        if self.tls is not None and self.tls.server_name:
            options.append(("grpc.ssl_target_name_override", self.tls.server_name))
        return options


def channel_target(target: str) -> str:
    """The gRPC target URI for ``host:port``, ``dns:///host:port`` or ``a:1,b:2``.

    A comma list becomes an ``ipv4:``/``ipv6:`` URI, which gRPC balances over
    as one channel; host names in it are resolved here, once (use
    ``dns:///`` for names whose addresses change).
    """
    items = [item.strip() for item in target.split(",") if item.strip()]
    if len(items) <= 1:
        return target.strip()
    validate_target(target)
    addresses = [address for item in items for address in _resolve(item)]
    # One URI holds one family: IPv4 where there is any (a dual-stack name
    # such as localhost resolves to both), else IPv6.
    ipv4 = [(host, port) for host, port in addresses if not _is_ipv6(host)]
    if ipv4:
        return "ipv4:" + ",".join(f"{host}:{port}" for host, port in ipv4)
    return "ipv6:" + ",".join(f"[{host}]:{port}" for host, port in addresses)


def _is_ipv6(host: str) -> bool:
    return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)


def split_host_port(item: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` as (host, port); raises ValueError if malformed."""
    host, sep, port = item.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {item!r}")
    return host.strip("[]"), int(port)


def validate_target(target: str) -> None:
    """Raise ValueError unless ``target`` is a gRPC target the adapter can use."""
    items = [item.strip() for item in target.split(",")]
    if not all(items):
        raise ValueError(f"empty address in {target!r}")
    if len(items) == 1:
        if "://" in target and not target.startswith("dns:///"):
            raise ValueError(f"use host:port or dns:///host:port, got {target!r}")
        split_host_port(target.removeprefix("dns:///"))
        return
    literals = set()
    for item in items:
        if "/" in item:
            raise ValueError(f"a comma list takes plain host:port addresses, got {item!r}")
        host, _ = split_host_port(item)
        with contextlib.suppress(ValueError):  # a host name: resolved when the channel is made
            literals.add(_is_ipv6(host))
    if len(literals) > 1:
        raise ValueError(f"a comma list holds IPv4 or IPv6 addresses, not both: {target!r}")


def _resolve(item: str) -> list[tuple[str, int]]:
    host, port = split_host_port(item)
    try:
        ipaddress.ip_address(host)
        return [(host, port)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({(str(info[4][0]), port) for info in infos})


def tensor_bytes(dtype: int, shape: Sequence[int] | None, *, batch: int) -> int | None:
    """An upper bound of one tensor's size on the wire; None when it can't be known.

    ``-1`` in the first dimension is the batch; any other unknown dimension,
    an unknown rank (``shape`` None) or a string dtype make the size unknowable;
    ``()`` is a scalar.
    """
    per_element = _WIRE_BYTES.get(dtype)
    if per_element is None or shape is None:
        return None
    dims = [batch if (index == 0 and size < 0) else size for index, size in enumerate(shape)]
    if any(size < 0 for size in dims):
        return None
    return per_element * math.prod(dims) + 16 * len(dims)


def message_bytes(tensors: Iterable[int | None], *, cap: int) -> int:
    """The message limit for tensors of these sizes: their sum plus headroom, at least 4 MiB.

    An unknown size gives ``cap``; a known total above ``cap`` is kept (a
    limit that rejects a model's well-formed answer is a bug, not a guard).
    """
    total = 0
    for size in tensors:
        if size is None:
            return max(cap, MIN_MESSAGE_BYTES)
        total += size
    return max(MIN_MESSAGE_BYTES, int(total * 1.25) + _HEADROOM_BYTES)
