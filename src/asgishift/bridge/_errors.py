"""Exceptions raised by the WSGI→ASGI bridge.

The tree::

    OSError
     ├── ClientDisconnected        the client went away; raised by ``wsgi.input`` reads
     └── RequestBodyTooLarge       the body grew past ``max_body_size`` (status hint 413)
    ValueError
     ├── BadRequest                the request cannot become a PEP 3333 environ (hint 400)
     └── InvalidResponse           the WSGI app broke PEP 3333 (status line, headers, chunks)

``ClientDisconnected`` and ``RequestBodyTooLarge`` subclass :class:`OSError` because
PEP 3333 apps already treat a failing ``wsgi.input`` read as an I/O error, and a silent
EOF would truncate an upload without anyone noticing.
"""

from __future__ import annotations

__all__ = ["BadRequest", "ClientDisconnected", "InvalidResponse", "RequestBodyTooLarge"]


class ClientDisconnected(OSError):
    """Signal that the HTTP client went away while the WSGI app was still working.

    Raised by ``wsgi.input`` reads (``read``, ``readline``, ``readlines``, iteration)
    and by the ``write()`` callable of PEP 3333 once the server reported
    ``http.disconnect`` (ASGI HTTP spec, "Disconnected Client") or a ``send()`` failed.
    Let it propagate: the bridge closes the response iterable and frees the worker.
    """


class RequestBodyTooLarge(OSError):
    """Signal that the request body grew past the bridge's ``max_body_size`` (bytes).

    Raised by ``wsgi.input`` reads when a body without ``Content-Length`` (chunked,
    HTTP/2) exceeds the limit. The bridge answers ``413 Content Too Large`` if the
    response has not started yet, whatever the app does with the exception.
    """

    error_status_hint = 413


class BadRequest(ValueError):
    """Signal a request the bridge cannot turn into a PEP 3333 environ.

    For example a non-numeric ``Content-Length``. The bridge answers
    ``error_status_hint`` (400) without calling the WSGI app.
    """

    error_status_hint = 400


class InvalidResponse(ValueError):
    """Signal that the WSGI app broke PEP 3333 in what it handed to the server.

    Raised by ``start_response`` for a bad status line or a header that is not a
    ``(str, str)`` pair, has a name that is not an HTTP token, or contains CR, LF or
    NUL (header injection); also used internally for a non-bytes chunk or a body
    before ``start_response``. The bridge answers 500 and logs the traceback.
    """
