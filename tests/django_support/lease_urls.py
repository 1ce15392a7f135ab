"""A URLconf with views that stream the identities of their threads and a context
variable their view set (lease tests).

Kept out of ``django_support.urls`` so the system checks, which scan that
URLconf for sync streaming views, do not see it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator

from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path


def thread_stream(request: HttpRequest) -> StreamingHttpResponse:
    """Stream ``view=<ident> body=<ident>``: the threads of the view and of its iteration."""
    view = threading.get_ident()

    def chunks() -> Iterator[bytes]:
        yield f"view={view} ".encode()
        yield f"body={threading.get_ident()}".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")


#: Set by :func:`context_stream`'s view, read while its response is iterated.
STREAM_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("stream_var")


def context_stream(request: HttpRequest) -> StreamingHttpResponse:
    """Set :data:`STREAM_VAR` in the view; stream the value its iteration sees."""
    STREAM_VAR.set("set-in-view")

    def chunks() -> Iterator[bytes]:
        yield STREAM_VAR.get("unset").encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")


urlpatterns = [
    path("stream/thread/", thread_stream, name="thread-stream"),
    path("stream/context/", context_stream, name="context-stream"),
]
