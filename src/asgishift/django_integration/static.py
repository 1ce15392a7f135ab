"""Serve static files in development, streamed from disk (what ``runserver`` does for
``django.contrib.staticfiles``, under ASGI).

Files are found with the staticfiles finders (Django docs, "The staticfiles
app"), like runserver's handler, and sent in :data:`CHUNK_SIZE` pieces read in
a thread, never whole. ``Range: bytes=...`` (one range, RFC 9110 §14) answers
206 or 416; ``If-Modified-Since`` answers 304; ``HEAD`` sends headers only.
Paths that leave the static roots (``..``, absolute paths, NUL bytes) get 404,
as do files that do not exist: under Django, the 404 page runserver gives (with
``DEBUG``, Django's debug page naming the file). Everything else goes to the
wrapped app.

The header logic (:func:`parse_range`, :func:`not_modified`) is pure code.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import posixpath
from collections.abc import Awaitable, Callable
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import unquote

from asgishift._types import ASGIApp, Message, Receive, Scope, Send
from asgishift.bridge._error_response import error_messages
from asgishift.bridge._server_io import send_messages

#: Bytes read from disk and sent per ``http.response.body`` message.
CHUNK_SIZE = 64 * 1024

#: ``find(relative_path) -> absolute path or None``.
Finder = Callable[[str], "str | None"]

#: ``not_found(scope, remainder) -> ASGI messages`` of a 404 answer; ``remainder`` is
#: the percent-decoded path below the static URL (``""`` for the static URL itself).
NotFound = Callable[[Scope, str], Awaitable[list[Message]]]


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """Parse a ``Range`` header against a file of ``size`` bytes (RFC 9110 §14.1.2).

    :return: ``(first, last)`` inclusive byte positions for one satisfiable
        range; ``None`` to ignore the header (absent, not ``bytes``, several
        ranges, or malformed); ``"unsatisfiable"`` for a range outside the file
        (answer 416).
    """
    if not header or not header.startswith("bytes="):
        return None
    spec = header[len("bytes=") :].strip()
    if "," in spec or "-" not in spec:
        return None
    start_text, _, end_text = spec.partition("-")
    start_text, end_text = start_text.strip(), end_text.strip()
    if not (start_text.isdigit() or start_text == "") or not (end_text.isdigit() or end_text == ""):
        return None
    if start_text == "":
        if end_text == "":
            return None
        suffix = int(end_text)
        if suffix == 0:
            return "unsatisfiable"
        return (max(0, size - suffix), size - 1) if size else "unsatisfiable"
    first = int(start_text)
    last = int(end_text) if end_text else size - 1
    if first >= size:
        return "unsatisfiable"
    if last < first:
        return None
    return first, min(last, size - 1)


def not_modified(if_modified_since: str | None, mtime: float) -> bool:
    """Return whether a file changed at ``mtime`` (seconds since the epoch) is not newer
    than the ``If-Modified-Since`` date (RFC 9110 §13.1.3); a bad date means "modified"."""
    if not if_modified_since:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return int(mtime) <= since


def relative_static_path(path: str, static_url_path: str) -> str | None:
    """Return the file path below the static URL, or ``None`` when ``path`` is not
    a safe static path (outside the prefix, ``..`` segments, absolute, NUL)."""
    if not path.startswith(static_url_path):
        return None
    return safe_relative(unquote(path[len(static_url_path) :]))


def safe_relative(relative: str) -> str | None:
    """Return ``relative`` (a decoded path below the static URL) normalised, or ``None``
    when it is empty or could leave the static roots (``..``, absolute, NUL, ``\\``)."""
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    if relative.startswith("/") or any(part in ("..", ".") for part in relative.split("/")):
        return None
    normalised = posixpath.normpath(relative)
    return None if normalised.startswith("..") else normalised


class StaticFilesApp:
    """ASGI wrapper serving ``static_url_path`` from ``find`` and passing the rest on.

    :param app: the wrapped ASGI app.
    :param static_url_path: URL path prefix with a trailing slash, e.g. ``"/static/"``.
    :param find: maps a relative path to an absolute file path or ``None``
        (Django: ``django.contrib.staticfiles.finders.find``).
    :param not_found: builds the 404 answer for a path not served; ``None``: a
        ``text/plain`` "Not Found".
    :param script_name: taken off the front of a request's path (at a ``/``)
        before it is matched, as Django's ``ASGIRequest`` does to find the view
        (Django: ``FORCE_SCRIPT_NAME``); ``None``: the scope's ``root_path``
        (ASGI HTTP spec). So ``/app/static/x.css``, which ``{% static %}`` links
        to under the script name ``/app``, is served, and ``/static/x.css`` too.
    """

    def __init__(
        self,
        app: ASGIApp,
        static_url_path: str,
        find: Finder,
        not_found: NotFound | None = None,
        script_name: str | None = None,
    ) -> None:
        self.app = app
        self.static_url_path = static_url_path
        self.find = find
        self.not_found = not_found
        self.script_name = script_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI 3 entry point (ASGI HTTP spec)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = self._path_info(scope)
        if not path.startswith(self.static_url_path):
            await self.app(scope, receive, send)
            return
        relative = relative_static_path(path, self.static_url_path)
        found = await asyncio.to_thread(self._find, relative) if relative else None
        if found is None:
            if self.not_found is None:
                await _plain(send, 404, scope["method"], b"Not Found")
            else:
                remainder = unquote(path[len(self.static_url_path) :])
                await send_messages(send, await self.not_found(scope, remainder))
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _plain(
                send, 405, scope["method"], b"Method Not Allowed", [(b"allow", b"GET, HEAD")]
            )
            return
        await self._send_file(scope, send, found)

    def _path_info(self, scope: Scope) -> str:
        """The request path without the script name (see the class documentation)."""
        path: str = scope["path"]
        script = self.script_name if self.script_name is not None else scope.get("root_path")
        script = (script or "").rstrip("/")
        if script and path.startswith(script + "/"):
            return path[len(script) :]
        return path

    def _find(self, relative: str) -> str | None:
        try:
            found = self.find(relative)
        except Exception:  # SuspiciousFileOperation and friends: not ours to serve
            return None
        return found if found and os.path.isfile(found) else None

    async def _send_file(self, scope: Scope, send: Send, path: str) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        stat = os.stat(path)
        size = stat.st_size
        content_type, encoding = mimetypes.guess_type(path)
        common = [
            (b"content-type", (content_type or "application/octet-stream").encode()),
            (b"last-modified", formatdate(stat.st_mtime, usegmt=True).encode()),
            (b"accept-ranges", b"bytes"),
        ]
        if encoding:
            common.append((b"content-encoding", encoding.encode()))
        if not_modified(headers.get("if-modified-since"), stat.st_mtime):
            await send({"type": "http.response.start", "status": 304, "headers": common[1:]})
            await send({"type": "http.response.body", "body": b""})
            return
        wanted = parse_range(headers.get("range"), size)
        if wanted == "unsatisfiable":
            extra = [(b"content-range", f"bytes */{size}".encode())]
            await _plain(send, 416, scope["method"], b"Range Not Satisfiable", extra)
            return
        status, first, last = 200, 0, size - 1
        if isinstance(wanted, tuple):
            status, (first, last) = 206, wanted
            common.append((b"content-range", f"bytes {first}-{last}/{size}".encode()))
        length = last - first + 1 if size else 0
        common.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": status, "headers": common})
        if scope["method"] == "HEAD" or length == 0:
            await send({"type": "http.response.body", "body": b""})
            return
        with open(path, "rb") as file:  # noqa: ASYNC230 - every read below is in a thread
            await asyncio.to_thread(file.seek, first)
            remaining = length
            while remaining > 0:
                chunk = await asyncio.to_thread(file.read, min(CHUNK_SIZE, remaining))
                if not chunk:  # the file shrank while being sent
                    break
                remaining -= len(chunk)
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": remaining > 0}
                )
        if remaining > 0:
            await send({"type": "http.response.body", "body": b""})


async def _plain(
    send: Send,
    status: int,
    method: str,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a short ``text/plain`` answer (``HEAD`` gets no body)."""
    await send_messages(send, error_messages(status, method, headers or (), body))


def staticfiles_app(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` to serve ``STATIC_URL`` with Django's staticfiles finders.

    A ``STATIC_URL`` on another host (``https://cdn.example.com/static/``) is
    that host's to serve: ``app`` is returned unwrapped, as runserver's
    ``StaticFilesHandler`` passes every request on for such a URL.

    :raise django.core.exceptions.ImproperlyConfigured: when ``STATIC_URL`` is
        unset (runserver refuses that too).
    """
    from urllib.parse import urlparse

    from django.conf import settings
    from django.contrib.staticfiles import finders
    from django.core.exceptions import ImproperlyConfigured

    static_url = settings.STATIC_URL or ""
    parsed = urlparse(static_url)
    if not static_url:
        raise ImproperlyConfigured(
            "runasgi serves static files from STATIC_URL, which is not set; "
            "pass --nostatic or set STATIC_URL = 'static/'"
        )
    if parsed.netloc:
        return app
    prefix = parsed.path if parsed.path.startswith("/") else "/" + parsed.path
    script_name = getattr(settings, "FORCE_SCRIPT_NAME", None) or ""
    if script_name and prefix.startswith(script_name.rstrip("/")):
        prefix = prefix[len(script_name.rstrip("/")) :]

    def find(relative: str) -> str | None:
        found = finders.find(relative)
        return found if isinstance(found, str) else None

    return StaticFilesApp(
        app,
        prefix if prefix.endswith("/") else prefix + "/",
        find,
        django_not_found,
        script_name=script_name or None,
    )


async def django_not_found(scope: Scope, remainder: str) -> list[Message]:
    """The 404 answer runserver's static handler gives for ``remainder`` (a :data:`NotFound`).

    Django's own static view (``django.contrib.staticfiles.views.serve``) names
    the problem (``Http404``: the file could not be found, or a directory was
    asked for) and ``response_for_exception`` renders it: with ``DEBUG``, Django's
    HTML debug page; else the project's ``handler404``. A path that leaves the
    static roots gets a ``Http404`` of its own. Runs in a thread (the URLconf and
    templates are sync code); ``HEAD`` gets the headers only.

    :param scope: the ASGI HTTP scope of the request.
    :param remainder: the percent-decoded path below the static URL.
    :return: the ``http.response.start`` and ``http.response.body`` messages.
    """
    return await asyncio.to_thread(_django_not_found_messages, scope, remainder)


def _django_not_found_messages(scope: Scope, remainder: str) -> list[Message]:
    import io

    from django.contrib.staticfiles import views
    from django.core.handlers.asgi import ASGIRequest
    from django.core.handlers.exception import response_for_exception
    from django.http import Http404

    request = ASGIRequest(scope, io.BytesIO())
    error: Http404 = Http404(f"{remainder!r} is not a static file")
    if remainder == "" or safe_relative(remainder) is not None:
        try:
            response = views.serve(request, remainder, insecure=True)
        except Http404 as exc:
            error = exc
        except Exception:  # SuspiciousFileOperation and friends: not found, as above
            pass
        else:  # the file appeared since it was looked for: still a 404, as decided
            response.close()
    response = response_for_exception(request, error)
    body = response.content
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
    headers += [
        (b"set-cookie", c.output(header="").strip().encode()) for c in response.cookies.values()
    ]
    headers.append((b"content-length", str(len(body)).encode()))
    response.close()
    start = {"type": "http.response.start", "status": response.status_code, "headers": headers}
    if scope["method"] == "HEAD":
        return [start, {"type": "http.response.body", "body": b""}]
    return [start, {"type": "http.response.body", "body": body}]


__all__ = [
    "CHUNK_SIZE",
    "NotFound",
    "StaticFilesApp",
    "django_not_found",
    "not_modified",
    "parse_range",
    "relative_static_path",
    "safe_relative",
    "staticfiles_app",
]
