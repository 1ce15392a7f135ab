"""The audited files' source lines as findings report them: text, character columns, comments.

Python's :mod:`ast` counts columns in UTF-8 bytes; a report counts characters
(Unicode code points), as SARIF's ``columnKind: unicodeCodePoints``, ruff and
flake8 do. The two only differ on a line that is not ASCII.

A ``# noqa`` counts only in a real comment, not in a string: the comments of a
file come from :mod:`tokenize`, run only on a file whose flagged line mentions
``noqa`` at all.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Mapping

from asgishift.audit._parse import source_text


def char_col(line: str, col: int) -> int:
    """Convert a 1-based UTF-8 byte column (Python's ``ast``) to a 1-based character one.

    :param line: the source line, decoded.
    :param col: 1-based column counted in UTF-8 bytes.
    :return: the 1-based column counted in characters (code points).
    """
    if line.isascii():
        return col
    return len(line.encode("utf-8")[: max(col - 1, 0)].decode("utf-8", "ignore")) + 1


class SourceLines:
    """The decoded lines of the audited files, each file decoded once, when first asked for.

    :param contents: every file's bytes by relative path.
    """

    def __init__(self, contents: Mapping[str, bytes]) -> None:
        self.contents = contents
        self.lines: dict[str, list[str]] = {}
        self.comments: dict[str, dict[int, str] | None] = {}

    def line(self, path: str, number: int) -> str:
        """Return line ``number`` (1-based) of ``path``, or ``""`` when there is none."""
        lines = self.lines.get(path)
        if lines is None:
            text = source_text(self.contents.get(path, b""))
            # Python's line ends only: str.splitlines() also splits at a form feed.
            lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            self.lines[path] = lines
        return lines[number - 1] if 0 < number <= len(lines) else ""

    def comment(self, path: str, number: int) -> str:
        """Return the comment on line ``number`` of ``path`` (``"# ..."``), or ``""``.

        Only a line whose text mentions ``noqa`` is looked at closely (the
        file is then tokenized once); any other line gives ``""``. A file that
        does not tokenize gives the whole line, as if it were all comment.
        """
        text = self.line(path, number)
        if "noqa" not in text.lower():
            return ""
        if path not in self.comments:
            self.comments[path] = _comments(source_text(self.contents.get(path, b"")))
        comments = self.comments[path]
        return text if comments is None else comments.get(number, "")

    def char_col(self, path: str, number: int, col: int) -> int:
        """Return the character column of byte column ``col`` on line ``number`` of ``path``."""
        return char_col(self.line(path, number), col)


def _comments(text: str) -> dict[int, str] | None:
    """Return each line's comment by line number, or ``None`` if ``text`` does not tokenize."""
    try:
        return {
            token.start[0]: token.string
            for token in tokenize.generate_tokens(io.StringIO(text).readline)
            if token.type == tokenize.COMMENT
        }
    except (tokenize.TokenError, SyntaxError):
        return None


__all__ = ["SourceLines", "char_col"]
