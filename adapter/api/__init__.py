"""The HTTP layer: thin blueprints between HTTP and :class:`adapter.service.Service`.

Only this package (and :mod:`adapter.app`) knows HTTP statuses and Flask.
"""

from __future__ import annotations

from flask import current_app

from adapter.service import Service


def service() -> Service:
    """This worker's :class:`~adapter.service.Service` (made by ``create_app``)."""
    found: Service = current_app.extensions["service"]
    return found
