"""The WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:application``."""

from __future__ import annotations

from quotes_api import app

from asgishift.bridge import ASGIToWSGI, ASGIToWSGIOptions

application = ASGIToWSGI(app, ASGIToWSGIOptions(response_timeout=30))
