"""The one Django settings module of the in-process Django tests.

SQLite by default. The ``postgres`` alias points at the real PostgreSQL
server the ``postgresql_server`` fixture starts (its port is filled in by
:mod:`django_support.plugin`); tests opt in with
``@pytest.mark.django_db(databases=["default", "postgres"])``.
MIDDLEWARE is ``startproject``'s default list.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SECRET_KEY = "asgishift-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "django_support.urls"
STATIC_URL = "static/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "asgishift.django_integration",
    "django_support.testapp",
    "django_views.viewsapp",
]

#: startproject's default middleware, in its order.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    # A file, not Django's in-memory test database: in-memory SQLite connections
    # ignore close(), so the connections of the handler's threads could not be
    # closed at shutdown (Python 3.13 warns about unclosed sqlite3 connections).
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(Path(tempfile.gettempdir()) / f"asgishift-tests-{os.getpid()}.sqlite3"),
        "TEST": {
            "NAME": str(Path(tempfile.gettempdir()) / f"asgishift-test-{os.getpid()}.sqlite3")
        },
    },
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "asgishift",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",  # replaced by the port of the server the tests start
        "TEST": {"NAME": "test_asgishift"},
    },
}
