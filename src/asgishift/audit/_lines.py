"""The audited files' source lines as findings report them: their text and character columns.

Python's :mod:`ast` counts columns in UTF-8 bytes; a report counts characters
(Unicode code points), as SARIF's ``columnKind: unicodeCodePoints``, ruff and
flake8 do. The two only differ on a line that is not ASCII.
"""

from __future__ import annotations

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

    def line(self, path: str, number: int) -> str:
        """Return line ``number`` (1-based) of ``path``, or ``""`` when there is none."""
        lines = self.lines.get(path)
        if lines is None:
            lines = source_text(self.contents.get(path, b"")).splitlines()
            self.lines[path] = lines
        return lines[number - 1] if 0 < number <= len(lines) else ""

    def char_col(self, path: str, number: int, col: int) -> int:
        """Return the character column of byte column ``col`` on line ``number`` of ``path``."""
        return char_col(self.line(path, number), col)


__all__ = ["SourceLines", "char_col"]
