"""docs/django_async_views.md: its table names what the modules export, and the §4
example runs as written."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from django.test import RequestFactory

DOC = Path(__file__).resolve().parents[2] / "docs" / "django_async_views.md"
HEADER = "| You have (sync) | Use (async) | Module |"
#: The name a code span of the "Use (async)" column gives: ``await f(...)``, ``@f``, ...
NAME = re.compile(r"`(?:async with |await |@)?([A-Za-z_]\w*)")


def table_rows() -> list[list[str]]:
    """The cells of each row of the table that opens the page."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER) + 2  # after the header and its separator
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


@pytest.mark.parametrize("row", table_rows(), ids=lambda row: row[0][:40])
def test_every_async_name_of_the_table_is_exported_by_its_module(row: list[str]) -> None:
    _, use, module_cell = row
    module = importlib.import_module(module_cell.strip("`"))
    names = NAME.findall(use)
    assert names, f"no name in {use!r}"
    missing = [name for name in names if name not in module.__all__]
    assert missing == [], f"{module.__name__} does not export {missing}"


def section_code(title: str) -> list[str]:
    """The ``python`` code blocks of the page's section headed ``title``."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def test_orm_example_runs(posts: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """§4's view, with its ``blog.models`` being the test app's models of the same shape."""
    from django_views.viewsapp.models import Post, Tag

    models_code, views_code = section_code("4. ORM work outside the generic views")
    assert "class Post(models.Model)" in models_code
    blog_models = types.ModuleType("blog.models")
    blog_models.__dict__.update(Post=Post, Tag=Tag)
    monkeypatch.setitem(sys.modules, "blog", types.ModuleType("blog"))
    monkeypatch.setitem(sys.modules, "blog.models", blog_models)
    views: dict[str, Any] = {}
    exec(compile(views_code, "django_async_views.md §4", "exec"), views)

    pk = posts[1].pk
    response = asyncio.run(views["report"](RequestFactory().get("/report/"), pk))
    data = json.loads(response.content)
    assert (data["post"], data["author"]) == ("Post 1", "Ada")
    assert data["posts_per_author"] == {"Ada": 3, "Bob": 4}
    assert "reported" in data["posts"][1]["tags"]
    assert len(data["posts"]) == len(posts)
