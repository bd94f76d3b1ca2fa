"""The demo page: ``GET /`` and ``GET /demo``, and its files under ``/demo/``.

One HTML page, one script module and one style sheet from the package
(:data:`PAGE_DIR`), plus the shipped sample photo; no CDN, no build step.
The page is a client of the public API like any other: it lists
``GET /v1/models`` and posts images to a model's ``endpoint``. Its answers
carry a Content-Security-Policy that lets it load and call nothing but this
service (and show the images its user picks, as ``blob:`` URLs).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory
from flask.typing import ResponseReturnValue

from adapter.api import problems

bp = Blueprint("demo", __name__)

DEMO_DIR = Path(__file__).resolve().parents[1] / "demo"
PAGE_DIR = DEMO_DIR / "page"
SAMPLES_DIR = DEMO_DIR / "samples"
# What /demo/<name> serves: the page's files and the sample, with their types.
ASSETS = {
    "demo.js": (PAGE_DIR, "text/javascript"),
    "demo.css": (PAGE_DIR, "text/css"),
    "digits.jpg": (SAMPLES_DIR, "image/jpeg"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@bp.get("/")
@bp.get("/demo")
def page() -> ResponseReturnValue:
    """The demo page: pick a model, give it an image, see what it found."""
    return _file(PAGE_DIR, "index.html", "text/html")


@bp.get("/demo/<name>")
def asset(name: str) -> ResponseReturnValue:
    """The page's script, its style sheet or the sample photo (404 for any other name)."""
    found = ASSETS.get(name)
    if found is None:
        raise problems.NotFound(f"There is no {name!r} in the demo page.")
    folder, mimetype = found
    return _file(folder, name, mimetype)


def _file(folder: Path, name: str, mimetype: str) -> Response:
    # no-cache: revalidated (ETag) on each load, so a new release shows at once.
    response = send_from_directory(folder, name, mimetype=mimetype, max_age=None)
    response.cache_control.no_cache = True
    response.headers.update(SECURITY_HEADERS)
    return response
