"""``--ssl_config_file``: TF Serving's SSLConfig text proto and the gRPC server credentials.

The file holds PEM *contents* (not paths), as TF Serving's
``tensorflow_serving/config/ssl_config.proto`` defines them::

    server_key: "-----BEGIN PRIVATE KEY-----\\n..."
    server_cert: "-----BEGIN CERTIFICATE-----\\n..."
    custom_ca: "-----BEGIN CERTIFICATE-----\\n..."
    client_verify: true

With ``client_verify`` the server requires a client certificate signed by
``custom_ca`` (mutual TLS); without it no client certificate is asked for.
As in TF Serving, TLS applies to the gRPC port only; the REST API stays HTTP.
"""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

from adapter.modelserver.config import ConfigError

_FIELDS = (  # name, number, type: as in ssl_config.proto
    ("server_key", 1, descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
    ("server_cert", 2, descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
    ("custom_ca", 3, descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
    ("client_verify", 4, descriptor_pb2.FieldDescriptorProto.TYPE_BOOL),
)


@dataclass(frozen=True)
class SslConfig:
    """The four SSLConfig fields: PEM key and certificate, optional CA, client_verify."""

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False


def _message_class() -> Any:
    """``tensorflow.serving.SSLConfig`` built in a private descriptor pool (no TF import)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="adapter/modelserver/ssl_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    message = file.message_type.add(name="SSLConfig")
    for name, number, kind in _FIELDS:
        message.field.add(
            name=name,
            number=number,
            type=kind,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.SSLConfig")
    )


def load_ssl_config(path: str) -> SslConfig:
    """Parse and check ``path``; raises ConfigError (``Invalid protobuf file: ...``) if unusable."""
    try:
        proto = text_format.Parse(Path(path).read_text(encoding="utf-8"), _message_class()())
    except (OSError, UnicodeDecodeError, text_format.ParseError) as exc:
        raise ConfigError(f"Invalid protobuf file: '{path}': {exc}") from None
    config = SslConfig(proto.server_key, proto.server_cert, proto.custom_ca, proto.client_verify)
    check(config, path)
    return config


def check(config: SslConfig, path: str) -> None:
    """Raise ConfigError unless the key, certificate and CA are PEM that TLS accepts."""
    if not config.server_key or not config.server_cert:
        raise ConfigError(f"{path}: server_key and server_cert are required")
    if config.client_verify and not config.custom_ca:
        raise ConfigError(f"{path}: client_verify needs custom_ca to verify client certificates")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="ssl-config-") as directory:  # mode 0700
        cert, key = Path(directory, "cert.pem"), Path(directory, "key.pem")
        cert.write_text(config.server_cert, encoding="utf-8")
        key.write_text(config.server_key, encoding="utf-8")
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise ConfigError(f"{path}: server_key/server_cert: {exc.reason or exc}") from None
    if config.custom_ca:
        try:
            context.load_verify_locations(cadata=config.custom_ca)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"{path}: custom_ca: {exc}") from None


def server_credentials(config: SslConfig) -> grpc.ServerCredentials:
    """Credentials like TF Serving's BuildServerCredentialsFromSSLConfigFile()."""
    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() or None,
        require_client_auth=config.client_verify,
    )
