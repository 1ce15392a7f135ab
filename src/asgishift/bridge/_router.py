"""Serve new ASGI apps beside an old WSGI app, path by path (the "strangler fig").

:class:`HybridRouter` sends requests under chosen path prefixes to ASGI apps
(FastAPI, Starlette, a Django ASGI app) and everything else to a fallback,
usually a WSGI app through :class:`~asgishift.bridge.WSGIToASGI`. A team
moves one route at a time by mounting its new implementation.

Path rules (pure functions, no I/O): :func:`normalise_prefix` and
:func:`match_prefix`. A prefix matches whole path segments only: ``/api``
matches ``/api`` and ``/api/x`` but not ``/apix``; the longest matching
prefix wins. Matching uses the path below the server's ``root_path``
(:func:`route_path`), whichever convention the server follows: uvicorn and
granian put ``root_path`` in ``path``, hypercorn and daphne do not.

Segments are those of the request as sent (:func:`segment_path`): when the
scope has ``raw_path`` (ASGI HTTP spec: the path "unmodified from the bytes
that were received"), an encoded slash ``%2F`` stays inside its segment, so
``/api%2Fx`` is one segment, ``api/x``, and does not fall under ``/api``
(RFC 3986 §2.2: a percent-encoded reserved character is not the character).
``path`` alone cannot tell: the spec decodes it, and ``/api%2Fx`` there reads
``/api/x``. Other escapes (``%20``, UTF-8) are decoded, so ``/my%20docs/x``
falls under the prefix ``/my docs``. Starlette's ``Mount`` matches the decoded
``path``; within one app a misread ``%2F`` only finds the wrong route, but here
it would pick the app, and a rule that a proxy in front applies to the raw
path (``/api/admin`` denied) would not cover the ``/admin`` route the mount
then serves. Without ``raw_path`` the decoded ``path`` is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from asgishift._types import ASGIApp, Receive, Scope, Send
from asgishift.bridge._environ import origin_form
from asgishift.bridge._lifespan import (
    ChildStage,
    Hook,
    Lifespan,
    LifespanFactory,
    Stage,
    hook_stages,
    serve_lifespan,
)

__all__ = [
    "HybridRouter",
    "match_prefix",
    "mount_scope",
    "normalise_prefix",
    "route_path",
    "segment_path",
]


def normalise_prefix(prefix: str) -> str:
    """Return a mount prefix as ``/segment[/segment...]`` without a trailing slash.

    :param prefix: e.g. ``"/api"``, ``"api/"`` or ``"/api/v2"``.
    :return: e.g. ``"/api"``.
    :raise ValueError: for an empty prefix or ``/`` (that is the fallback's
        place), a query string or fragment, or an empty segment (``//``).
    """
    stripped = prefix.strip("/")
    if not stripped:
        raise ValueError(
            f"mount prefix {prefix!r} covers every path; give a path such as /api (everything "
            "outside the mounts goes to the fallback app)"
        )
    if "?" in stripped or "#" in stripped or "//" in stripped:
        raise ValueError(f"mount prefix must be a path such as /api, got {prefix!r}")
    return "/" + stripped


def match_prefix(path: str, prefixes: Sequence[str]) -> str | None:
    """Return the first of ``prefixes`` that ``path`` starts with as whole segments.

    :param path: the route path, ``""`` or starting with ``/`` (see :func:`route_path`).
    :param prefixes: normalised prefixes (:func:`normalise_prefix`), longest
        first so that the longest match wins.
    :return: the matching prefix, or ``None``.
    """
    for prefix in prefixes:
        if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
            return prefix
    return None


def route_path(path: str, root_path: str) -> str:
    """Return ``path`` below ``root_path``, for either server convention.

    The ASGI HTTP spec puts ``root_path`` at the start of ``path`` (uvicorn,
    granian); hypercorn and daphne leave it out. ``root_path`` is removed only
    when it is there as whole segments.

    :param path: the scope's ``path``.
    :param root_path: the scope's ``root_path``, ``""`` when none.
    :return: the path the application routes on.
    """
    if root_path and _under(path, root_path):
        return path[len(root_path) :]
    return path


def segment_path(raw_path: bytes) -> str:
    """Return ``raw_path`` decoded segment by segment, an encoded ``/`` kept as ``%2F``.

    Percent-escapes are decoded and the bytes read as UTF-8 (undecodable
    bytes become U+FFFD), as the servers decode ``path``; only a ``/`` that
    was sent encoded stays encoded, so it cannot split a segment.

    :param raw_path: the scope's ``raw_path`` (ASGI HTTP spec), the path
        component as the client sent it (bytes). A query string some servers
        leave on it is dropped, and an absolute-form target gives its path
        (:func:`~._environ.origin_form`), as for ``PATH_INFO``.
    :return: e.g. ``"/my docs/api%2Fx"`` for ``b"/my%20docs/api%2fx"``.
    """
    raw_path = bytes(raw_path).partition(b"?")[0]
    if raw_path[:1] != b"/":
        raw_path = origin_form(raw_path)
    return "/".join(
        unquote_to_bytes(part).decode("utf-8", "replace").replace("/", "%2F")
        for part in raw_path.split(b"/")
    )


def _under(path: str, prefix: str) -> bool:
    """Return whether ``path`` starts with ``prefix`` as whole segments."""
    return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")


def mount_scope(scope: Scope, prefix: str) -> Scope:
    """Return the scope a mounted app sees: ``root_path`` extended by ``prefix``.

    Follows the ASGI HTTP spec: ``path`` (and ``raw_path``) include the new
    ``root_path``, whether or not the server's did; a WSGI app behind the
    mount gets ``SCRIPT_NAME`` = old ``root_path`` + ``prefix``. The server's
    scope is not changed.

    :param scope: an ``http`` or ``websocket`` scope whose route path (see
        :func:`route_path`) starts with ``prefix``.
    :param prefix: the matched, normalised prefix.
    """
    root = scope.get("root_path") or ""
    path = scope["path"]
    child = dict(scope)
    child["root_path"] = root + prefix
    if root and not _under(path, root):
        # The server left root_path out of path (hypercorn, daphne): put it in.
        child["path"] = root + path
        raw = scope.get("raw_path")
        if raw is not None:
            child["raw_path"] = root.encode("utf-8") + raw
    return child


class HybridRouter:
    """An ASGI 3 app that routes path prefixes to ASGI apps and the rest to a fallback.

    >>> from asgishift.bridge import HybridRouter, WSGIToASGI
    >>> app = HybridRouter(WSGIToASGI(flask_app), {"/api": fastapi_app})  # doctest: +SKIP

    ``http`` and ``websocket`` requests whose path (below ``root_path``)
    starts with a mount's prefix, as whole segments (those of ``raw_path``
    when the server gives it, so ``%2F`` splits no segment; see the module
    documentation), go to that mount with
    ``root_path`` extended by the prefix (see :func:`mount_scope`); the
    longest prefix wins. Other ``websocket`` requests go to ``websocket`` when
    given (a WSGI fallback would refuse them), and everything else to
    ``fallback`` with the scope unchanged.

    ``lifespan`` fans out: at startup the hooks run first (``on_startup`` in
    order, then the ``lifespan`` context), then each child app's own lifespan
    in order (``fallback``, the mounts as given, ``websocket``; an app given
    twice once); shutdown runs the same in reverse order, so the hooks' clean-up
    comes after every app (and a bridge's worker pool) has stopped. A child
    that fails to start, or a hook that raises, fails startup with its message
    (``lifespan.startup.failed``) after the parts already started are shut
    down. A child that does not speak lifespan is skipped.

    :param fallback: the ASGI app for every other path, e.g.
        ``WSGIToASGI(wsgi_app)``.
    :param mounts: prefix -> ASGI app, as a mapping or ``(prefix, app)`` pairs;
        prefixes are normalised by :func:`normalise_prefix`.
    :param websocket: the ASGI app for ``websocket`` requests outside every
        mount; ``None`` sends them to ``fallback``.
    :param on_startup: callables taking no arguments, sync or async, run at
        startup in order (Starlette's ``on_startup``).
    :param on_shutdown: the same, run at shutdown in order.
    :param lifespan: an async context manager factory (Starlette's
        ``lifespan=``), called with this router; a mapping it yields is merged
        into ``scope["state"]``.
    :raise ValueError: for a bad or repeated prefix.
    :raise ValueError: from ``__call__``, for a scope type other than
        ``http``, ``websocket`` or ``lifespan`` (ASGI spec).
    """

    def __init__(
        self,
        fallback: ASGIApp,
        mounts: Mapping[str, ASGIApp] | Iterable[tuple[str, ASGIApp]] = (),
        *,
        websocket: ASGIApp | None = None,
        on_startup: Iterable[Hook] = (),
        on_shutdown: Iterable[Hook] = (),
        lifespan: LifespanFactory | None = None,
    ) -> None:
        pairs = mounts.items() if isinstance(mounts, Mapping) else mounts
        table: dict[str, ASGIApp] = {}
        for prefix, app in pairs:
            key = normalise_prefix(prefix)
            if key in table:
                raise ValueError(f"mount prefix {key!r} is given twice")
            table[key] = app
        self.fallback = fallback
        self.websocket = websocket
        #: ``(prefix, app)`` in the order given (lifespan order).
        self.mounts: tuple[tuple[str, ASGIApp], ...] = tuple(table.items())
        self.on_startup = tuple(on_startup)
        self.on_shutdown = tuple(on_shutdown)
        self.lifespan = lifespan
        self._prefixes = tuple(sorted(table, key=len, reverse=True))
        self._apps = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one connection scope (see the class docstring).

        :raise ValueError: for a scope type other than ``http``, ``websocket``
            or ``lifespan``.
        """
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            raw = scope.get("raw_path")
            # No escape in raw_path: path says the same (and is already decoded).
            path = scope["path"] if raw is None or b"%" not in raw else segment_path(raw)
            root = scope.get("root_path")
            if root:
                path = route_path(path, root)
            prefix = match_prefix(path, self._prefixes)
            if prefix is not None:
                await self._apps[prefix](mount_scope(scope, prefix), receive, send)
            elif kind == "websocket" and self.websocket is not None:
                await self.websocket(scope, receive, send)
            else:
                await self.fallback(scope, receive, send)
        elif kind == "lifespan":
            await serve_lifespan(receive, send, Lifespan(self.lifespan_stages(scope)))
        else:
            raise ValueError(
                f"asgishift HybridRouter cannot serve ASGI scope type {kind!r}; "
                "it routes 'http', 'websocket' and 'lifespan' scopes"
            )

    def lifespan_stages(self, scope: Scope) -> list[Stage]:
        """Return the startup order for one ``lifespan`` scope: hooks, then each child app.

        :param scope: the server's lifespan scope; each child gets a copy that
            shares its ``state`` dict.
        """
        stages = hook_stages(self.on_startup, self.on_shutdown, self.lifespan, self, scope)
        children: list[tuple[str, Any]] = [("fallback app", self.fallback)]
        children += [(f"mount {prefix}", app) for prefix, app in self.mounts]
        if self.websocket is not None:
            children.append(("websocket app", self.websocket))
        seen: set[int] = set()
        for name, app in children:
            if id(app) in seen:
                continue
            seen.add(id(app))
            stages.append(ChildStage(name, app, dict(scope)))
        return stages
