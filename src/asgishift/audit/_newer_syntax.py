"""Tell a file written for a newer Python from a file with a syntax error.

CPython rejects syntax that a later release added with a plain ``invalid
syntax`` (or a message that reads as a mistake in the file, such as
``multiple exception types must be parenthesized`` for PEP 758's ``except A,
B:``). The audit parses with the Python running it, so telling the user to
"fix the file" there is wrong: the file is fine, the audit needs a newer
Python. :func:`needs_python` reads the rejected line and names the release
that accepts it.

This module only reads a :class:`SyntaxError`: no parsing, no I/O.
"""

from __future__ import annotations

import re
import sys
from typing import Final

__all__ = ["needs_python"]

#: A line that opens a PEP 695 type parameter list (3.12).
_TYPE_PARAMS: Final = re.compile(r"(?:async\s+def|def|class|type)\s+\w+\s*\[")

#: A PEP 695 ``type`` alias without parameters (3.12).
_TYPE_ALIAS: Final = re.compile(r"type\s+\w+\s*=")

#: The ``as NAME:`` that still needs the parentheses of ``except (A, B) as e:``
#: under PEP 758 (3.14 accepts ``except A, B:`` only without ``as``).
_EXCEPT_AS: Final = re.compile(r"\bas\s+\w+\s*:\s*$")

#: The prefix of a PEP 750 template string (``t"..."``, ``rt"..."``, 3.14) just
#: before the quote the parser stopped at.
_TSTRING_PREFIX: Final = re.compile(r"(?<![\w.])(?:[tT]|[rR][tT]|[tT][rR])$")

_OPENERS: Final = {"[": "]", "(": ")", "{": "}"}


def _type_params(text: str, start: int) -> str:
    """Return the text inside the bracket that opens at ``text[start]``.

    Brackets nested in it (``[T = list[int]]``) are kept; an unclosed list
    runs to the end of the line (a list continued on the next line).
    """
    closers: list[str] = []
    for index in range(start, len(text)):
        char = text[index]
        if char in _OPENERS:
            closers.append(_OPENERS[char])
        elif closers and char == closers[-1]:
            closers.pop()
            if not closers:
                return text[start + 1 : index]
    return text[start + 1 :]


def _has_default(params: str) -> bool:
    """Return whether a type parameter list gives one a PEP 696 default (``T = int``).

    Only an ``=`` outside nested brackets and not part of ``==``, ``<=``,
    ``>=``, ``!=`` or ``:=`` counts.
    """
    depth = 0
    for index, char in enumerate(params):
        if char in _OPENERS:
            depth += 1
        elif char in _OPENERS.values():
            depth -= 1
        elif char == "=" and depth == 0:
            before = params[index - 1] if index else ""
            after = params[index + 1 : index + 2]
            if before not in "=<>!:" and after != "=":
                return True
    return False


def _feature_release(exc: SyntaxError) -> tuple[int, int] | None:
    """Return the release that added the syntax ``exc`` stopped at, or ``None``."""
    raw = exc.text or ""
    text = raw.strip()
    message = exc.msg or ""
    params = _TYPE_PARAMS.match(text)
    if params:
        return (3, 13) if _has_default(_type_params(text, params.end() - 1)) else (3, 12)
    if _TYPE_ALIAS.match(text):
        return (3, 12)
    if message.startswith("multiple exception types must be parenthesized"):
        head = text.split("#", 1)[0]
        return None if _EXCEPT_AS.search(head) else (3, 14)
    if re.match(r"except\s*\*", text):
        return (3, 11)
    if "f-string" in message:
        return (3, 12)
    if message.startswith("invalid syntax") and exc.offset:
        at = exc.offset - 1
        if raw[at : at + 1] in ("'", '"') and _TSTRING_PREFIX.search(raw[:at]):
            return (3, 14)
    return None


def needs_python(exc: SyntaxError) -> str:
    """Return the Python release that would parse the line ``exc`` rejects, else ``""``.

    :param exc: what :func:`ast.parse` raised for the file, on the running
        Python.
    :return: ``"3.N"`` when the rejected line uses syntax added after the
        running release (PEP 654 ``except*`` 3.11; PEP 695 type parameters and
        ``type`` aliases, PEP 701 f-strings 3.12; PEP 696 type parameter
        defaults 3.13; PEP 758 ``except A, B:`` and PEP 750 template strings
        3.14), else ``""``: then the file has a syntax error to fix. A
        heuristic over the one line CPython names; it never raises.
    """
    release = _feature_release(exc)
    if release is None or release <= sys.version_info[:2]:
        return ""
    return f"{release[0]}.{release[1]}"
