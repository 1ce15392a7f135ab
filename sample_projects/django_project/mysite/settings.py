"""Settings of the sample project (``startproject`` layout and defaults).

The database is SQLite (``db.sqlite3`` beside ``manage.py``) unless
``SAMPLE_DB_PORT`` is set, which selects PostgreSQL on ``SAMPLE_DB_HOST``
(default 127.0.0.1) as user ``SAMPLE_DB_USER`` (default ``postgres``),
database ``SAMPLE_DB_NAME`` (default ``sample``). ``SAMPLE_DEBUG=0`` turns
DEBUG off; ``SAMPLE_CONN_MAX_AGE`` sets CONN_MAX_AGE (seconds).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SAMPLE_SECRET_KEY", "django-insecure-sample-project-only")
DEBUG = os.environ.get("SAMPLE_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "asgishift.django_integration",
    "shelf",
    "reading",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

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

WSGI_APPLICATION = "mysite.wsgi.application"

CONN_MAX_AGE = int(os.environ.get("SAMPLE_CONN_MAX_AGE", "0"))
if os.environ.get("SAMPLE_DB_PORT"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("SAMPLE_DB_NAME", "sample"),
            "USER": os.environ.get("SAMPLE_DB_USER", "postgres"),
            "HOST": os.environ.get("SAMPLE_DB_HOST", "127.0.0.1"),
            "PORT": os.environ["SAMPLE_DB_PORT"],
            "CONN_MAX_AGE": CONN_MAX_AGE,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "CONN_MAX_AGE": CONN_MAX_AGE,
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_REDIRECT_URL = "/"

# asgishift: lifespan hooks run at server startup and shutdown (ASGI servers only).
ASGISHIFT_LIFESPAN = ["shelf.lifespan.started_at"]

# Used by asgishift's tests: serve mysite.asgi through ASGI_APPLICATION, or fail at startup.
if os.environ.get("SAMPLE_ASGI_APPLICATION"):
    ASGI_APPLICATION = "mysite.asgi.application"
if os.environ.get("SAMPLE_FAIL_STARTUP"):
    ASGISHIFT_LIFESPAN = [*ASGISHIFT_LIFESPAN, "shelf.lifespan.failing"]

# reading app: the external quotes API the async quote page calls (httpx.AsyncClient).
READING_QUOTE_URL = os.environ.get("SAMPLE_QUOTE_URL", "http://127.0.0.1:8001/quote")
