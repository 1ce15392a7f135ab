"""``bridge_apps.app`` that also files the environ of each ``/upload`` (HTTP/2 live tests).

``tests/live_apps/bridge_apps.py`` answers ``/upload`` with the size and SHA-256 of
the body the app read and ``/environ`` with the environ, but no endpoint reports
both for one request. ``app`` here records the environ of every ``/upload``
request under its ``X-Test-Id`` (the ``environ`` entry of ``GET /_state``) and
then hands it to ``bridge_apps.router`` unchanged, so a test sees for the same
request the body the app read and the ``CONTENT_LENGTH`` and
``wsgi.input_terminated`` it was given. Otherwise it is ``bridge_apps.app``:
the same router behind :func:`wsgiref.validate.validator`, in the bridge with
the options of ``bridge_apps._options()``.

It imports ``bridge_apps``: serve it with ``tests/live_apps`` on ``PYTHONPATH``.
"""

from __future__ import annotations

from collections.abc import Iterable
from wsgiref.validate import validator

import bridge_apps

from asgishift._types import Environ, StartResponse, WSGIApp
from asgishift.bridge import WSGIToASGI


def recording_router(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """File the environ of an ``/upload`` under its ``X-Test-Id``, then route as ``bridge_apps``."""
    test_id = environ.get("HTTP_X_TEST_ID", "")
    if test_id and environ.get("PATH_INFO") == "/upload":
        bridge_apps._record("environ", test_id, bridge_apps._environ_json(environ))
    return bridge_apps.router(environ, start_response)


# typeshed's StartResponse protocol and ours spell the optional exc_info
# differently; both describe PEP 3333's start_response.
_validated: WSGIApp = validator(recording_router)  # type: ignore[arg-type]
app = WSGIToASGI(_validated, **bridge_apps._options())
