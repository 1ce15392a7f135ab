"""ASGI app for the live tests: the twins' URLconf behind asgishift's bounded handler.

Configured from the shared test settings, with the database from the
environment: ``VIEWS_DB_PORT`` and ``VIEWS_DB_NAME`` (PostgreSQL on 127.0.0.1,
user ``postgres``), ``VIEWS_MAX_THREADS`` threads, ``VIEWS_CONN_MAX_AGE``,
``VIEWS_CONN_HEALTH_CHECKS=1`` for ``CONN_HEALTH_CHECKS``.
"""

from __future__ import annotations

import os

from django.conf import settings

import django_support.settings as shared

values = {name: getattr(shared, name) for name in dir(shared) if name.isupper()}
values["ROOT_URLCONF"] = "django_views.viewsapp.urls"
values["DATABASES"] = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["VIEWS_DB_NAME"],
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": os.environ["VIEWS_DB_PORT"],
        "CONN_MAX_AGE": int(os.environ.get("VIEWS_CONN_MAX_AGE", "60")),
        "CONN_HEALTH_CHECKS": os.environ.get("VIEWS_CONN_HEALTH_CHECKS") == "1",
    }
}
settings.configure(**values)

from asgishift.django_integration import get_asgi_application  # noqa: E402

application = get_asgi_application(max_threads=int(os.environ.get("VIEWS_MAX_THREADS", "4")))
