"""TLS for the REST client: an HTTPAdapter whose connections use the adapter's TlsFiles.

The PEM contents become one ``ssl.SSLContext``: only the given CA is trusted
(system roots without one), the client pair is loaded for mTLS, and
``server_name`` overrides the name checked in the server certificate, as
``grpc.ssl_target_name_override`` does for the gRPC channel.
"""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path
from typing import Any

from requests.adapters import HTTPAdapter

from adapter.serving.channel import TlsFiles


def ssl_context(tls: TlsFiles) -> ssl.SSLContext:
    """A client context from PEM contents; ssl.SSLError if they don't load."""
    context = ssl.create_default_context(cadata=tls.ca.decode("ascii") if tls.ca else None)
    if tls.cert is not None and tls.key is not None:
        # load_cert_chain() reads files only: write them privately, load, delete.
        with tempfile.TemporaryDirectory(prefix="tfs-adapter-tls-") as directory:
            cert, key = Path(directory, "cert.pem"), Path(directory, "key.pem")
            cert.write_bytes(tls.cert)
            key.touch(mode=0o600)
            key.write_bytes(tls.key)
            context.load_cert_chain(cert, key)
    return context


class TlsAdapter(HTTPAdapter):
    """An HTTPAdapter for ``https://`` that verifies with :func:`ssl_context` only."""

    def __init__(self, tls: TlsFiles, **kwargs: Any) -> None:
        # Set before HTTPAdapter.__init__, which builds the pool manager.
        self._context = ssl_context(tls)
        self._server_name = tls.server_name
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        """Every pool gets the context (and the server name override, if any)."""
        pool_kwargs["ssl_context"] = self._context
        if self._server_name:
            pool_kwargs["server_hostname"] = self._server_name
            pool_kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(*args, **pool_kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """Nothing to add: requests would load its CA bundle into the context here."""
