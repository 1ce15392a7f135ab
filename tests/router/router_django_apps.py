"""Django's own ASGI handler mounted at ``/dj`` beside a WSGI app, for the live tests.

Imported by the server subprocess only (never by the test process, whose
Django is configured by ``tests/django_support/plugin.py``): it configures
Django here with ``settings.configure()``, with this module as the URLconf,
no database and no installed apps.

- ``hybrid``: a :class:`~asgishift.bridge.HybridRouter` built in code, the
  WSGI app (checked by :func:`wsgiref.validate.validator`, through
  ``WSGIToASGI``) for every path but ``/dj``, Django's ASGI handler there.
- ``legacy_checked`` and ``django_app``: the two sides by name, for
  ``asgishift serve legacy_checked --mount /dj=...:django_app``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any
from wsgiref.validate import validator

from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="router-django-live-tests-only",
        INSTALLED_APPS=[],
        # The CSRF check is on, so the upload view's exemption is what lets it in.
        MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
        DATABASES={},
        USE_TZ=True,
        # With DEBUG off Django logs nothing to the console by default: a 500
        # would leave no trace in the server log the tests show on failure.
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"stderr": {"class": "logging.StreamHandler"}},
            "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}},
        },
    )

# Imported once the settings are in place.
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt

from asgishift.bridge import HybridRouter, WSGIToASGI


def stream_chunk(index: int, size: int) -> bytes:
    """Return chunk ``index`` of a streamed response: ``b"000007|"`` repeated to ``size`` bytes."""
    return (b"%06d|" % index * size)[:size]


# --- Django ------------------------------------------------------------------------------


def hello(request: HttpRequest) -> JsonResponse:
    """Echo the paths Django sees and the URLs it builds."""
    return JsonResponse(
        {
            "app": "django",
            "path": request.path,
            "path_info": request.path_info,
            "SCRIPT_NAME": request.META["SCRIPT_NAME"],
            "reverse": reverse("hello"),
            "absolute_uri": request.build_absolute_uri(),
        }
    )


def _upload(request: HttpRequest) -> JsonResponse:
    """Answer with the request body's length and SHA-256."""
    body = request.body
    return JsonResponse(
        {
            "app": "django",
            "method": request.method,
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    )


#: ``_upload``, exempt from the CSRF check (which is on: see the settings).
upload = csrf_exempt(_upload)


async def _chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for index in range(count):
        yield stream_chunk(index, size)


def stream(request: HttpRequest) -> StreamingHttpResponse:
    """Stream ``?chunks=`` chunks of ``?size=`` bytes (:func:`stream_chunk`), async."""
    count = int(request.GET["chunks"])
    size = int(request.GET["size"])
    return StreamingHttpResponse(_chunks(count, size), content_type="application/octet-stream")


urlpatterns = [
    path("hello/", hello, name="hello"),
    path("upload/", upload, name="upload"),
    path("stream/", stream, name="stream"),
]

django_app = get_asgi_application()

# --- the WSGI app ------------------------------------------------------------------------

StartResponse = Callable[..., Any]


def legacy(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Say that the WSGI app answered, with the ``SCRIPT_NAME`` and ``PATH_INFO`` it got."""
    body = json.dumps(
        {"app": "wsgi", "SCRIPT_NAME": environ["SCRIPT_NAME"], "PATH_INFO": environ["PATH_INFO"]}
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


#: ``legacy`` checked against PEP 3333 on every call.
legacy_checked = validator(legacy)

#: The router built in code.
hybrid = HybridRouter(WSGIToASGI(legacy_checked), {"/dj": django_app})
