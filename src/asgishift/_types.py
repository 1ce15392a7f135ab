"""Type aliases for the two gateway interfaces asgishift translates between.

ASGI names follow the ASGI 3 specification (``scope``, ``receive``, ``send``);
WSGI names follow PEP 3333 (``environ``, ``start_response``). Messages are
plain dicts, as the specs define them, so the aliases stay loose where the
specs are loose.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from types import TracebackType
from typing import Any, Protocol, TypeAlias

# --- ASGI 3 -----------------------------------------------------------------
Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

# --- WSGI (PEP 3333) ----------------------------------------------------------
Environ: TypeAlias = dict[str, Any]
ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]
OptExcInfo: TypeAlias = ExcInfo | tuple[None, None, None]
WriteCallable: TypeAlias = Callable[[bytes], object]


class StartResponse(Protocol):
    """The ``start_response`` callable of PEP 3333 ("The start_response() Callable")."""

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = ...,
        /,
    ) -> WriteCallable: ...


WSGIApp: TypeAlias = Callable[[Environ, StartResponse], Iterable[bytes]]

__all__ = [
    "ASGIApp",
    "Environ",
    "ExcInfo",
    "Message",
    "OptExcInfo",
    "Receive",
    "Scope",
    "Send",
    "StartResponse",
    "WSGIApp",
    "WriteCallable",
]
