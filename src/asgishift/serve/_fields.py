"""Read a dataclass's field documentation, the one source of CLI help text.

Fields of :class:`~asgishift.serve.ServeConfig` and
:class:`~asgishift.bridge.BridgeOptions` are documented by the string
literal written under each field (an "attribute docstring", which Sphinx's
autodoc also reads). :func:`field_docs` reads those literals from the
class's source, and :func:`plain_text` turns their reStructuredText into the
plain sentences ``--help`` prints, so an option's help is written once.
"""

from __future__ import annotations

import ast
import inspect
import os
import re

_ROLE = re.compile(r":[\w:]+:`~?([^`<]*?)\s*(?:<[^>]*>)?`")
_LITERAL = re.compile(r"``([^`]*)``")


def plain_text(text: str) -> str:
    """Return reStructuredText ``text`` as one line of plain text.

    ``:class:`~a.B``` becomes ``B`` (``~`` keeps the last dotted part),
    ````x```` becomes ``x`` and whitespace runs become one space.

    :param text: an attribute docstring.
    :return: the text for ``argparse`` help.
    """

    def role(match: re.Match[str]) -> str:
        target = match.group(1)
        return target.rsplit(".", 1)[-1] if match.group(0).split("`")[1].startswith("~") else target

    text = _ROLE.sub(role, text)
    text = _LITERAL.sub(r"\1", text)
    return " ".join(text.split())


def _source_file(cls: type) -> str | None:
    """Return the file defining ``cls``, found through its own functions.

    ``inspect.getsource`` looks the class up in ``cls.__module__``, which
    packages rewrite to their public name (``asgishift.bridge``) for the docs.
    """
    for value in vars(cls).values():
        code = getattr(getattr(value, "__func__", value), "__code__", None)
        filename = getattr(code, "co_filename", "")
        if filename and not filename.startswith("<") and os.path.isfile(filename):
            return str(filename)
    try:
        return inspect.getsourcefile(cls)
    except TypeError:
        return None


def field_docs(cls: type) -> dict[str, str]:
    """Return ``{field name: docstring}`` for the documented fields of ``cls``.

    :param cls: a class whose annotated fields are each followed by a string
        literal.
    :return: the cleaned docstrings (reStructuredText, see :func:`plain_text`);
        empty when the class's source is unavailable (e.g. a frozen executable).
    """
    filename = _source_file(cls)
    if filename is None:
        return {}
    try:
        with open(filename, encoding="utf-8") as file:
            tree = ast.parse(file.read())
    except (OSError, SyntaxError, ValueError):
        return {}
    docs: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef) or node.name != cls.__name__:
            continue
        for stmt, following in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[stmt.target.id] = inspect.cleandoc(following.value.value)
    return docs


__all__ = ["field_docs", "plain_text"]
