"""Test certificates for TLS and mTLS against the model server; needs ``cryptography``.

:func:`make_test_certificates` writes a throwaway CA, a server pair (SANs
``127.0.0.1``, ``::1`` and ``localhost``) and a client pair, all EC P-256 and
valid for a day; :func:`write_ssl_config` turns them into the
``--ssl_config_file`` TF Serving reads (PEM contents inline). Re-exported by
:mod:`adapter.modelserver.testing`; imports neither TensorFlow nor gRPC.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TestCertificates:
    """Paths of the PEM files :func:`make_test_certificates` wrote."""

    __test__ = False  # not a pytest test class, despite the name

    directory: Path
    ca: Path  # ca.pem: the CA certificate that signed both pairs
    server_cert: Path  # server.pem
    server_key: Path  # server.key
    client_cert: Path  # client.pem
    client_key: Path  # client.key

    def read(self, name: str) -> bytes:
        """The bytes of one file by field name, e.g. ``read("ca")``."""
        path: Path = getattr(self, name)
        return path.read_bytes()


def make_test_certificates(directory: Path, *, days: int = 1) -> TestCertificates:
    """Write ca.pem, server.pem/.key and client.pem/.key into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca_cert = _certificate("adapter test CA", ca_key, ca_key, None, days=days, usage="ca")
    server_key = _new_key()
    server_cert = _certificate("localhost", server_key, ca_key, ca_cert, days=days, usage="server")
    client_key = _new_key()
    client_cert = _certificate("adapter", client_key, ca_key, ca_cert, days=days, usage="client")
    certs = TestCertificates(
        directory=directory,
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    certs.ca.write_bytes(_cert_pem(ca_cert))
    certs.server_cert.write_bytes(_cert_pem(server_cert))
    certs.server_key.write_bytes(_key_pem(server_key))
    certs.client_cert.write_bytes(_cert_pem(client_cert))
    certs.client_key.write_bytes(_key_pem(client_key))
    for key in (certs.server_key, certs.client_key):
        key.chmod(0o600)
    return certs


def write_ssl_config(path: Path, certs: TestCertificates, client_verify: bool = False) -> Path:
    """Write TF Serving's SSLConfig text proto for ``certs`` to ``path``; returns ``path``.

    ``custom_ca`` is always set (the test CA); ``client_verify`` makes the
    server require a client certificate signed by it.
    """
    fields = {
        "server_key": certs.server_key.read_text(encoding="ascii"),
        "server_cert": certs.server_cert.read_text(encoding="ascii"),
        "custom_ca": certs.ca.read_text(encoding="ascii"),
    }
    lines = [f'{name}: "{_escape(text)}"' for name, text in fields.items()]
    lines.append(f"client_verify: {'true' if client_verify else 'false'}")
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def _escape(text: str) -> str:
    """A text-proto string literal's body: backslashes, quotes and newlines escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _new_key() -> Any:
    """A fresh EC P-256 private key (fast to make, accepted by gRPC and OpenSSL)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _certificate(
    common_name: str, key: Any, issuer_key: Any, issuer: Any, *, days: int, usage: str
) -> Any:
    """A certificate for ``key``, signed by ``issuer_key`` (self-signed when ``issuer`` is None)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=usage == "ca", path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if usage == "ca":
        builder = builder.add_extension(_key_usage(cert_sign=True), critical=True)
    else:
        purpose = (
            ExtendedKeyUsageOID.SERVER_AUTH
            if usage == "server"
            else ExtendedKeyUsageOID.CLIENT_AUTH
        )
        builder = builder.add_extension(_key_usage(cert_sign=False), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if usage == "server":
        names = [x509.DNSName("localhost")]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", "::1")]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _key_usage(*, cert_sign: bool) -> Any:
    """KeyUsage for a CA (certificate and CRL signing) or a leaf (digital signature)."""
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _cert_pem(certificate: Any) -> bytes:
    """PEM bytes of a certificate."""
    from cryptography.hazmat.primitives import serialization

    pem: bytes = certificate.public_bytes(serialization.Encoding.PEM)
    return pem


def _key_pem(key: Any) -> bytes:
    """Unencrypted PKCS#8 PEM bytes of a private key."""
    from cryptography.hazmat.primitives import serialization

    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem
