"""Optional API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Off when no key is configured (``ADAPTER_API_KEYS``, ``ADAPTER_API_KEYS_FILE``).
When on, every route but health, metrics, the docs and the demo page needs a
key (the page asks its user for one), and so does every method but a CORS
preflight's ``OPTIONS``, which runs no view (see :mod:`adapter.api.cors`); the check runs
before the body is read, takes the same time whichever key (if any) matches,
and neither the key nor the ``Authorization`` header is ever logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from flask import Flask, request

from adapter.api import problems

log = logging.getLogger(__name__)

# Routes that stay open with keys on: probes, Prometheus' scrape (inside the
# cluster, like the probes), the API's own documentation and the demo page.
OPEN_ROUTES = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.yaml", "/docs", "/", "/demo"})
OPEN_ROUTE_PREFIXES = ("/docs/", "/demo/")
HOW_TO_SEND = "Send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`."


def install(app: Flask, keys: tuple[str, ...]) -> None:
    """Require one of ``keys`` on the API's routes (no-op when empty)."""
    if not keys:
        return
    digests = tuple(hashlib.sha256(key.encode("utf-8")).digest() for key in keys)

    @app.before_request
    def _require_key() -> None:
        if request.method == "OPTIONS" or _is_open():  # a preflight carries no key
            return
        presented = _presented_key()
        if presented is None:
            log.info("rejected %s %r: no API key", request.method, request.path)
            raise problems.Unauthorized(f"This API needs a key. {HOW_TO_SEND}")
        if not _matches(presented, digests):
            log.info("rejected %s %r: API key not valid", request.method, request.path)
            raise problems.Unauthorized(f"The API key is not valid. {HOW_TO_SEND}")


def _is_open() -> bool:
    """Whether the route that will serve this request is open without a key.

    Decided on the matched route, not the raw path, so a path that merely
    starts with ``/docs/`` can only reach the docs' own handlers; an unmatched
    path (404, 405, redirect) runs no handler, so its own path decides.
    """
    rule = request.url_rule
    route = rule.rule if rule is not None else request.path
    return route in OPEN_ROUTES or route.startswith(OPEN_ROUTE_PREFIXES)


def _presented_key() -> bytes | None:
    """The key the request carries: a Bearer token, else ``X-API-Key``; None if neither."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        token = request.headers.get("X-API-Key", "")
    token = token.strip()
    if not token:
        return None
    try:
        return token.encode("latin-1")  # WSGI headers are the raw bytes, read as latin-1
    except UnicodeEncodeError:
        return token.encode("utf-8")


def _matches(presented: bytes, digests: tuple[bytes, ...]) -> bool:
    """Whether ``presented`` is a configured key, comparing against every key in constant time."""
    digest = hashlib.sha256(presented).digest()
    found = False
    for known in digests:
        found |= hmac.compare_digest(digest, known)  # no early exit: timing says nothing
    return found
