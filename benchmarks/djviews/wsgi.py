"""WSGI entry point for gunicorn gthread."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djviews.settings")
application = get_wsgi_application()
