"""A URLconf with one view that streams the identities of its threads (lease tests).

Kept out of ``django_support.urls`` so the system checks, which scan that
URLconf for sync streaming views, do not see it.
"""

from __future__ import annotations

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


urlpatterns = [path("stream/thread/", thread_stream, name="thread-stream")]
