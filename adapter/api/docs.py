"""``GET /openapi.yaml`` (the contract) and ``GET /docs`` (Swagger UI, no CDN)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import swagger_ui_bundle  # type: ignore[import-untyped]  # ships no py.typed
from flask import Blueprint, Response, send_from_directory, url_for
from flask.typing import ResponseReturnValue

from adapter.api import problems

bp = Blueprint("docs", __name__)

SPEC_NAME = "openapi.yaml"
# The Swagger UI files the page loads, and their media types; nothing else is served.
ASSETS = {
    "swagger-ui.css": "text/css",
    "index.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>tfs-adapter API</title>
    <link rel="stylesheet" type="text/css" href="{css}">
    <link rel="stylesheet" type="text/css" href="{index_css}">
    <link rel="icon" type="image/png" href="{icon}" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="{bundle}" charset="UTF-8"></script>
    <script src="{preset}" charset="UTF-8"></script>
    <script src="{initializer}" charset="UTF-8"></script>
  </body>
</html>
"""
# validatorUrl null: Swagger UI would otherwise fetch a badge from an outside validator.
INITIALIZER = """window.onload = function () {{
  window.ui = SwaggerUIBundle({{
    url: {spec},
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  }});
}};
"""


@cache
def spec_path() -> Path:
    """Where ``openapi.yaml`` is: inside the installed package, else the source checkout's root."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / SPEC_NAME, package.parent / SPEC_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{SPEC_NAME} is neither in {package} nor beside it")


@bp.get("/openapi.yaml")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 document of this service, as ``application/yaml``."""
    return Response(spec_path().read_bytes(), mimetype="application/yaml")


@bp.get("/docs")
def page() -> ResponseReturnValue:
    """The Swagger UI page for ``/openapi.yaml``; every asset comes from this service."""
    html = PAGE.format(
        css=_asset_url("swagger-ui.css"),
        index_css=_asset_url("index.css"),
        icon=_asset_url("favicon-32x32.png"),
        bundle=_asset_url("swagger-ui-bundle.js"),
        preset=_asset_url("swagger-ui-standalone-preset.js"),
        initializer=url_for("docs.initializer"),
    )
    return Response(html, mimetype="text/html")


@bp.get("/docs/swagger-initializer.js")
def initializer() -> ResponseReturnValue:
    """The script that starts Swagger UI on this service's own ``/openapi.yaml``."""
    spec = url_for("docs.openapi")
    return Response(INITIALIZER.format(spec=f'"{spec}"'), mimetype="text/javascript")


@bp.get("/docs/<asset>")
def asset(asset: str) -> ResponseReturnValue:
    """One Swagger UI file from the ``swagger-ui-bundle`` package (404 for any other name)."""
    mimetype = ASSETS.get(asset)
    if mimetype is None:
        raise problems.NotFound(f"There is no {asset!r} in the API docs.")
    return send_from_directory(
        str(swagger_ui_bundle.swagger_ui_path),
        asset,
        mimetype=mimetype,
        max_age=3600,
        conditional=False,
    )


def _asset_url(name: str) -> str:
    return url_for("docs.asset", asset=name)
