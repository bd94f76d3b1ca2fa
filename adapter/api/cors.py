"""CORS: which web pages on other origins may call the API (``ADAPTER_CORS_ORIGINS``).

Off by default: without it a browser lets no page on another origin read an
answer. On, it is flask-cors answering: the allowed origins exactly (or ``*``
when no API key is needed), the methods and request headers the API reads,
the answer headers a page may read, and how long a browser may keep a
preflight's answer. A preflight (``OPTIONS``) runs no view: Flask answers it
and :mod:`adapter.api.auth` lets it through without a key, so it never
reaches a model server. An origin not allowed gets no CORS header at all.
"""

from __future__ import annotations

from flask import Flask, Response
from flask_cors import CORS

METHODS = ("GET", "POST", "OPTIONS")
# The request headers the API reads (Content-Type beyond the three "simple"
# forms: a JSON body), and the answer headers a page may read.
ALLOW_HEADERS = (
    "Content-Type",
    "Authorization",
    "X-API-Key",
    "X-Request-ID",
    "X-Request-Timeout-Ms",
)
EXPOSE_HEADERS = ("X-Request-ID", "Server-Timing", "Retry-After")


def install(app: Flask, origins: tuple[str, ...], max_age_s: int) -> None:
    """Answer CORS for ``origins`` (no-op when empty; ``("*",)``: any origin)."""
    if not origins:
        return
    CORS(
        app,
        origins="*" if origins == ("*",) else list(origins),
        always_send=False,  # only an allowed Origin gets CORS headers; none without one
        send_wildcard=origins == ("*",),
        methods=list(METHODS),
        allow_headers=list(ALLOW_HEADERS),
        expose_headers=list(EXPOSE_HEADERS),
        max_age=max_age_s,
        supports_credentials=False,  # keys travel in headers, never in cookies
        allow_private_network=False,
    )

    @app.after_request
    def _vary(response: Response) -> Response:
        # flask-cors names Origin in Vary only for two or more origins; but the
        # answer differs with the Origin header for one as well (and for "*":
        # a request without it gets no CORS header), so a shared cache must know.
        response.vary.add("Origin")
        return response
