"""How channels are made: targets, their validation, channel options and message limits."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from adapter.serving.channel import (
    MIN_MESSAGE_BYTES,
    ChannelSettings,
    TlsFiles,
    channel_target,
    message_bytes,
    split_host_port,
    tensor_bytes,
    validate_target,
)
from adapter.serving.protos import tensor_pb2

DT = tensor_pb2.DataType
MiB = 1024 * 1024
KiB = 1024


# --- channel_target -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["localhost:8500", "tfs.models.svc:8500", "dns:///tfs-headless.models.svc:8500", "[::1]:8500"],
)
def test_a_single_target_is_left_to_grpc(target: str) -> None:
    assert channel_target(target) == target


def test_a_single_target_loses_surrounding_blanks() -> None:
    assert channel_target("  localhost:8500 ") == "localhost:8500"


def test_an_ipv4_list_becomes_one_ipv4_uri() -> None:
    assert channel_target("127.0.0.1:1,127.0.0.1:2") == "ipv4:127.0.0.1:1,127.0.0.1:2"


def test_blanks_around_list_items_are_ignored() -> None:
    assert channel_target("10.0.0.1:8500, 10.0.0.2:8500") == "ipv4:10.0.0.1:8500,10.0.0.2:8500"


def test_an_ipv6_list_becomes_one_ipv6_uri() -> None:
    assert channel_target("[::1]:1,[::1]:2") == "ipv6:[::1]:1,[::1]:2"


def _resolves_to_both_families(host: str) -> bool:
    infos = socket.getaddrinfo(host, 1, type=socket.SOCK_STREAM)
    return len({info[0] for info in infos}) > 1


def test_a_list_of_host_names_is_resolved_once() -> None:
    uri = channel_target("localhost:1,localhost:2")
    assert uri.startswith(("ipv4:", "ipv6:"))
    addresses = uri.split(":", 1)[1].split(",")
    assert {split_host_port(address)[1] for address in addresses} == {1, 2}
    assert all(split_host_port(address)[0] in ("127.0.0.1", "::1") for address in addresses)


def test_a_list_of_dual_stack_host_names_is_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    # The resolver of a dual-stack host (this sandbox's /etc/hosts maps localhost to IPv4 only).
    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        assert host == "tfs.example"
        stream = socket.SOCK_STREAM
        return [
            (socket.AF_INET6, stream, 6, "", ("2001:db8::7", port, 0, 0)),
            (socket.AF_INET, stream, 6, "", ("192.0.2.7", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    uri = channel_target("tfs.example:8500,tfs.example:8501")
    assert uri in (
        "ipv4:192.0.2.7:8500,192.0.2.7:8501",
        "ipv6:[2001:db8::7]:8500,[2001:db8::7]:8501",
    )


def test_a_list_mixing_ipv4_and_ipv6_is_refused() -> None:
    with pytest.raises(ValueError, match="IPv4 or IPv6 addresses, not both"):
        channel_target("127.0.0.1:1,[::1]:2")


def test_a_target_that_passes_validation_can_be_connected_to() -> None:
    target = "127.0.0.1:1,[::1]:2"
    try:
        validate_target(target)
    except ValueError:
        return  # refused at start: fine
    channel_target(target)


# --- validate_target / split_host_port -------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "",
        "host",
        "host:",
        ":8500",
        "host:0",
        "host:99999",
        "host:port",
        "http://x:1",
        "grpc://x:1",
        "a:1,,b:2",
        "a:1,",
        "dns:///a:1,b:2",
        "a:1,dns:///b:2",
    ],
)
def test_unusable_targets_are_refused(target: str) -> None:
    with pytest.raises(ValueError):
        validate_target(target)


@pytest.mark.parametrize(
    "target",
    ["h:1", "h:65535", "dns:///h:1", "a:1, b:2", "10.0.0.1:8500,10.0.0.2:8500", "[::1]:8500"],
)
def test_usable_targets_are_accepted(target: str) -> None:
    validate_target(target)


def test_split_host_port_reads_ipv6_in_brackets() -> None:
    assert split_host_port("[2001:db8::1]:8500") == ("2001:db8::1", 8500)
    assert split_host_port("tfs:8500") == ("tfs", 8500)


# --- ChannelSettings.options -----------------------------------------------------------------


def _options(settings: ChannelSettings) -> dict[str, Any]:
    pairs = settings.options()
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), "an option given twice is ambiguous to gRPC"
    return dict(pairs)


def test_calls_are_spread_round_robin() -> None:
    config = json.loads(_options(ChannelSettings())["grpc.service_config"])
    assert config == {"loadBalancingConfig": [{"round_robin": {}}]}


def test_keepalive_respects_tf_servings_ping_policy() -> None:
    options = _options(ChannelSettings(keepalive_time_ms=30_000, keepalive_timeout_ms=7_000))
    assert options["grpc.keepalive_time_ms"] == 30_000
    assert options["grpc.keepalive_timeout_ms"] == 7_000
    assert options["grpc.keepalive_permit_without_calls"] == 0
    assert options["grpc.http2.max_pings_without_data"] == 2


def test_message_limits_are_passed_through() -> None:
    options = _options(ChannelSettings(max_send_bytes=5 * MiB, max_receive_bytes=70 * MiB))
    assert options["grpc.max_send_message_length"] == 5 * MiB
    assert options["grpc.max_receive_message_length"] == 70 * MiB


def test_reconnects_back_off_briefly() -> None:
    options = _options(ChannelSettings())
    assert options["grpc.initial_reconnect_backoff_ms"] == 100
    assert options["grpc.max_reconnect_backoff_ms"] <= 2_000


@pytest.mark.parametrize(
    "tls", [None, TlsFiles(), TlsFiles(ca=b"-----BEGIN CERTIFICATE-----", server_name=None)]
)
def test_no_server_name_override_without_a_tls_server_name(tls: TlsFiles | None) -> None:
    assert "grpc.ssl_target_name_override" not in _options(ChannelSettings(tls=tls))


def test_tls_server_name_overrides_the_checked_name() -> None:
    settings = ChannelSettings(tls=TlsFiles(server_name="tfs.internal"))
    assert _options(settings)["grpc.ssl_target_name_override"] == "tfs.internal"


# --- tensor_bytes / message_bytes ------------------------------------------------------------


def test_detection_boxes_size() -> None:
    size = tensor_bytes(DT.DT_FLOAT, (-1, 100, 4), batch=1)
    assert size is not None
    assert 1600 <= size <= 1600 + 64  # 400 floats, and a little for the shape
    # The -1 is the batch: each more image adds exactly its 400 floats.
    assert tensor_bytes(DT.DT_FLOAT, (-1, 100, 4), batch=8) == size + 7 * 1600


def test_uint8_counts_two_bytes_per_element() -> None:
    # As int_val varints, 128..255 take two bytes each.
    one = tensor_bytes(DT.DT_UINT8, (-1, 320, 320, 3), batch=1)
    two = tensor_bytes(DT.DT_UINT8, (-1, 320, 320, 3), batch=2)
    assert one is not None and two is not None
    assert two - one == 2 * 320 * 320 * 3
    assert one >= 2 * 320 * 320 * 3


def test_int32_counts_the_ten_bytes_of_a_negative_varint() -> None:
    one = tensor_bytes(DT.DT_INT32, (-1, 5), batch=1)
    two = tensor_bytes(DT.DT_INT32, (-1, 5), batch=2)
    assert one is not None and two is not None
    assert two - one == 10 * 5


def test_a_fixed_first_dimension_is_not_the_batch() -> None:
    assert tensor_bytes(DT.DT_FLOAT, (2, 3), batch=50) == tensor_bytes(DT.DT_FLOAT, (2, 3), batch=1)


def test_a_scalar_is_one_element() -> None:
    assert tensor_bytes(DT.DT_FLOAT, (), batch=1) == 4


@pytest.mark.parametrize("shape", [(-1, -1, -1, 3), (-1, 100, -1), (1, -1)])
def test_an_unknown_dimension_makes_the_size_unknown(shape: tuple[int, ...]) -> None:
    assert tensor_bytes(DT.DT_FLOAT, shape, batch=1) is None


@pytest.mark.parametrize("shape", [(-1,), ()])
def test_strings_have_no_size_bound(shape: tuple[int, ...]) -> None:
    assert tensor_bytes(DT.DT_STRING, shape, batch=1) is None


def test_small_messages_keep_grpcs_own_4_mib() -> None:
    assert message_bytes([1600, 800], cap=64 * MiB) == MIN_MESSAGE_BYTES == 4 * MiB
    assert message_bytes([], cap=64 * MiB) == 4 * MiB


def test_an_unknown_size_gives_the_cap() -> None:
    assert message_bytes([None], cap=64 * MiB) == 64 * MiB
    assert message_bytes([1600, None, 10 * MiB], cap=32 * MiB) == 32 * MiB


def test_a_cap_below_4_mib_still_gives_4_mib() -> None:
    assert message_bytes([None], cap=1 * MiB) == 4 * MiB


def test_known_sizes_get_a_quarter_and_64_kib_of_headroom() -> None:
    assert message_bytes([6 * MiB, 2 * MiB], cap=64 * MiB) == 10 * MiB + 64 * KiB


def test_a_known_total_above_the_cap_is_kept() -> None:
    # A limit that rejects a model's well-formed answer is a bug, not a guard.
    assert message_bytes([80 * MiB], cap=64 * MiB) == 100 * MiB + 64 * KiB
