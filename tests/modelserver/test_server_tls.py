"""The gRPC transport, as in TF Serving: TLS and mTLS (--ssl_config_file), default keepalive.

TLS covers gRPC only; the REST API stays plain HTTP, as in TF Serving.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from adapter.modelserver.server import parse_args, server_options
from adapter.modelserver.testing import (
    REPO_ROOT,
    ModelServer,
    TestCertificates,
    install_version,
    make_test_certificates,
    start_model_server,
    write_ssl_config,
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    """A CA, a server pair for 127.0.0.1/localhost and a client pair."""
    return make_test_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, exports: dict[str, Path]) -> Path:
    """half_plus_two as version 1 (served as ``default``)."""
    base = tmp_path_factory.mktemp("tls-model") / "m"
    install_version(exports["plus2"], base, 1)
    return base


def _serve(model_dir: Path, certs: TestCertificates, client_verify: bool) -> ModelServer:
    config = write_ssl_config(certs.directory / f"ssl-{client_verify}.config", certs, client_verify)
    args = ["--model_base_path", str(model_dir), "--ssl_config_file", str(config)]
    return start_model_server(args, 90, rest=True)


@pytest.fixture(scope="module")
def tls_server(model_dir: Path, certs: TestCertificates) -> Iterator[ModelServer]:
    """TLS without client certificates."""
    with _serve(model_dir, certs, client_verify=False) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(model_dir: Path, certs: TestCertificates) -> Iterator[ModelServer]:
    """TLS that requires a client certificate signed by the CA."""
    with _serve(model_dir, certs, client_verify=True) as server:
        yield server


def status_call(channel: grpc.Channel) -> list[int]:
    """GetModelStatus of ``default`` over ``channel``: its versions."""
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "default"
    response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
    return [status.version for status in response.model_version_status]


def credentials(
    certs: TestCertificates, *, client: bool = False, ca: bytes | None = None
) -> grpc.ChannelCredentials:
    """Channel credentials trusting the test CA (or ``ca``), with the client pair if asked."""
    return grpc.ssl_channel_credentials(
        root_certificates=ca or certs.read("ca"),
        private_key=certs.read("client_key") if client else None,
        certificate_chain=certs.read("client_cert") if client else None,
    )


def failure(channel: grpc.Channel) -> grpc.StatusCode:
    """The code a status call on ``channel`` fails with."""
    with pytest.raises(grpc.RpcError) as info:
        status_call(channel)
    return info.value.code()  # type: ignore[no-any-return,attr-defined]


def test_tls_with_the_ca_works(tls_server: ModelServer, certs: TestCertificates) -> None:
    with grpc.secure_channel(tls_server.target, credentials(certs)) as channel:
        assert status_call(channel) == [1]
    # The certificate names localhost too.
    localhost = f"localhost:{tls_server.port}"
    with grpc.secure_channel(localhost, credentials(certs)) as channel:
        assert status_call(channel) == [1]


def test_plaintext_is_refused(tls_server: ModelServer) -> None:
    with grpc.insecure_channel(tls_server.target) as channel:
        assert failure(channel) == grpc.StatusCode.UNAVAILABLE


def test_an_untrusted_server_is_refused(
    tls_server: ModelServer, tmp_path: Path, certs: TestCertificates
) -> None:
    other = make_test_certificates(tmp_path / "other")
    with grpc.secure_channel(tls_server.target, credentials(certs, ca=other.read("ca"))) as channel:
        assert failure(channel) == grpc.StatusCode.UNAVAILABLE


def test_rest_api_stays_plain_http(tls_server: ModelServer) -> None:
    response = requests.get(f"{tls_server.rest_url}/v1/models/default", timeout=10)
    assert response.json()["model_version_status"][0]["state"] == "AVAILABLE"


def test_mtls_needs_a_client_certificate(mtls_server: ModelServer, certs: TestCertificates) -> None:
    with grpc.secure_channel(mtls_server.target, credentials(certs)) as channel:
        assert failure(channel) == grpc.StatusCode.UNAVAILABLE
    with grpc.secure_channel(mtls_server.target, credentials(certs, client=True)) as channel:
        assert status_call(channel) == [1]


def test_a_client_certificate_from_another_ca_is_refused(
    mtls_server: ModelServer, certs: TestCertificates, tmp_path: Path
) -> None:
    other = make_test_certificates(tmp_path / "other")
    foreign = grpc.ssl_channel_credentials(
        root_certificates=certs.read("ca"),
        private_key=other.read("client_key"),
        certificate_chain=other.read("client_cert"),
    )
    with grpc.secure_channel(mtls_server.target, foreign) as channel:
        assert failure(channel) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server_key: 'x' nonsense: 1", "Invalid protobuf file"),
        ("server_key: 'not a key' server_cert: 'not a cert'", "server_key/server_cert"),
        ("client_verify: true", "server_key and server_cert are required"),
    ],
)
def test_a_bad_ssl_config_exits_1(model_dir: Path, tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "ssl.config"
    config.write_text(text)
    command = [sys.executable, "-m", "adapter.modelserver.server", "--port", "0"]
    command += ["--model_base_path", str(model_dir), "--ssl_config_file", str(config)]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=90)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_keepalive_is_grpcs_default_policy() -> None:
    options = dict(server_options(parse_args(["--models_dir", "/x"])))
    assert not [key for key in options if "keepalive" in key or "ping" in key]
    assert options["grpc.max_receive_message_length"] == 64 * 1024 * 1024


def test_a_client_pinging_too_often_gets_goaway(
    tls_server: ModelServer, certs: TestCertificates
) -> None:
    # gRPC's server default: no pings closer than 5 minutes without data, 2 strikes.
    aggressive = [
        ("grpc.keepalive_time_ms", 200),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    states: list[grpc.ChannelConnectivity] = []
    idle_again = threading.Event()

    def watch(state: grpc.ChannelConnectivity) -> None:
        states.append(state)
        if grpc.ChannelConnectivity.READY in states and state is grpc.ChannelConnectivity.IDLE:
            idle_again.set()  # the server sent GOAWAY too_many_pings

    channel = grpc.secure_channel(tls_server.target, credentials(certs), options=aggressive)
    with channel:
        channel.subscribe(watch)
        started = time.monotonic()
        assert status_call(channel) == [1]
        assert idle_again.wait(20), states
        print(f"GOAWAY after {time.monotonic() - started:.1f}s")
