"""A download view returning ``FileResponse``, for asgishift.W004 (Django's stock ASGI
handler reads the file whole before sending it)."""

from __future__ import annotations

from django.http import FileResponse, HttpRequest
from django.urls import path


def download(request: HttpRequest) -> FileResponse:
    """The module's own source, as an attachment."""
    return FileResponse(open(__file__, "rb"), as_attachment=True)  # Django closes it


urlpatterns = [path("download/", download)]
