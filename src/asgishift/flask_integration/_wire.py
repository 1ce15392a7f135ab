"""What the Flask integration takes from the bridge's protocol translation, in one place.

The scope → environ translation (PEP 3333 environ from an ASGI HTTP scope)
is the bridge's pure code, reused here rather than written twice; this module
is the only one that imports it, so a move inside :mod:`asgishift.bridge`
changes one import. Header encoding for responses Flask has already checked
is local: Werkzeug's ``Headers`` refuse newlines in values, so only the
ASGI byte spelling is left to do.
"""

from __future__ import annotations

from collections.abc import Iterable

from asgishift._types import Environ
from asgishift.bridge._environ import base_environ, build_environ
from asgishift.bridge._errors import BadRequest
from asgishift.bridge._files import ErrorStream, FileWrapper
from asgishift.bridge._input import StreamInput

__all__ = ["BadRequest", "StreamInput", "asgi_headers", "build_environ", "new_base_environ"]


def new_base_environ() -> Environ:
    """Return the per-app constant environ keys (``wsgi.errors``, ``wsgi.file_wrapper``, ...)."""
    return base_environ(ErrorStream(), FileWrapper)


def asgi_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Spell WSGI-style ``(name, value)`` strings as ASGI header byte pairs.

    Names are lower-cased (ASGI HTTP spec, "Response Start"); both are
    latin-1, as PEP 3333 requires of header strings.

    :raise UnicodeEncodeError: for a character outside latin-1.
    """
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
