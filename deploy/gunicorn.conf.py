"""Gunicorn config for containers: ``gunicorn -c deploy/gunicorn.conf.py``.

The settings live in the package (``adapter.gunicorn_conf``) so an installed
wheel has them too; this file is the deploy-time entry point.
"""

from adapter.gunicorn_conf import *  # noqa: F403
