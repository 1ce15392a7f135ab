"""``a2w_apps`` for uWSGI, twice: as other servers serve it, and under ``/raw/`` without
the WSGI middleware around the bridge.

``/raw/...`` reaches ``a2w_apps.application_raw`` (the bridge alone, so uWSGI gets
back the object its ``wsgi.file_wrapper`` returned); every other path reaches
``a2w_apps.application``, whose ``wsgiref.validate`` wraps and iterates the response
iterable, as Sentry's or OpenTelemetry's WSGI middleware does.

uWSGI's ``--mount`` would run each app in an interpreter of its own, where
pydantic-core (through FastAPI, imported by ``a2w_apps``) cannot be imported.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from a2w_apps import application as wrapped_application
from a2w_apps import application_raw

RAW = "/raw"


def application(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path.startswith(RAW + "/"):
        environ["PATH_INFO"] = path[len(RAW) :]
        return application_raw(environ, start_response)
    return wrapped_application(environ, start_response)
