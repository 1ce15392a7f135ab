"""What a call written in an ``async def`` runs: generators made, not iterated; lambdas kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from asgishift.audit._model import AuditConfig
from asgishift.audit.engine import audit_paths

#: Line 6 sleeps in a generator function; ``relay``/``make`` hand it on.
PRELUDE = """import asyncio
import time


def numbers():
    time.sleep(1)
    yield 1


def relay():
    yield from numbers()


def make():
    return numbers()


async def view():
"""
SLEEP = [("ASH101", 6)]


#: Line 13 is the first line of ``view``'s body.
LAMBDAS = """import asyncio
import time

from asgiref.sync import sync_to_async
from django.db import models


class Book(models.Model):
    title = models.CharField(max_length=10)


async def view():
"""


def _found(body: str, tmp_path: Path, prelude: str = PRELUDE) -> list[tuple[str, int]]:
    """Audit ``prelude`` with ``body`` as the body of ``view``: ``(code, line)`` of each finding."""
    text = prelude + "".join(f"    {line}\n" for line in body.split("\n"))
    (tmp_path / "m.py").write_text(text, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert result.errors == []
    return sorted({(f.code, f.line) for f in result.findings})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("gen = numbers()\nreturn gen", [], id="kept-and-returned"),
        pytest.param("gen = numbers()", [], id="kept"),
        pytest.param("return numbers()", [], id="returned"),
        pytest.param("gen = relay()\nreturn gen", [], id="relay-kept"),
        pytest.param("gen = numbers()\ngen = None\nreturn gen", [], id="rebound"),
        pytest.param("for x in numbers():\n    pass", SLEEP, id="for"),
        pytest.param("return list(numbers())", SLEEP, id="list"),
        pytest.param("return next(numbers())", SLEEP, id="next"),
        pytest.param("return sum(numbers())", SLEEP, id="sum"),
        pytest.param("return [x for x in numbers()]", SLEEP, id="comprehension"),
        pytest.param("return list(relay())", SLEEP, id="yield-from"),
        pytest.param("return list(make())", SLEEP, id="returned-by-a-helper"),
        pytest.param("gen = numbers()\nfor x in gen:\n    pass", SLEEP, id="kept-then-for"),
        pytest.param("gen = numbers()\nreturn list(gen)", SLEEP, id="kept-then-list"),
        pytest.param(
            "gen = numbers()\ndef drain():\n    return list(gen)\nreturn drain()",
            SLEEP,
            id="kept-then-read-by-a-closure",
        ),
    ],
)
def test_a_generator_runs_when_iterated_not_when_made(
    body: str, expected: list[tuple[str, int]], tmp_path: Path
) -> None:
    assert _found(body, tmp_path) == expected


def test_unsafe_fixes_leave_a_generator_made_in_async_code_alone(tmp_path: Path) -> None:
    from asgishift.audit.fix import Skip, fix_findings

    _found("gen = numbers()\nreturn gen", tmp_path)
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    report = fix_findings(result.findings, tmp_path, unsafe=True, write=False)
    assert report.changes == []
    # The iterated one is found, and refused: sync_to_async(numbers)() would
    # still run the generator's body on the event loop.
    _found("return list(numbers())", tmp_path)
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    report = fix_findings(result.findings, tmp_path, unsafe=True, write=False)
    assert report.changes == []
    assert [why for _, why in report.skipped] == [Skip.GENERATOR]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "job = lambda: time.sleep(1)\n"
            "await asyncio.get_running_loop().run_in_executor(None, job)",
            [],
            id="executor",
        ),
        pytest.param("job = lambda: time.sleep(1)\nawait sync_to_async(job)()", [], id="wrapped"),
        pytest.param(
            "fetch = lambda: list(Book.objects.all())\nreturn await sync_to_async(fetch)()",
            [],
            id="orm-wrapped",
        ),
        pytest.param("job = lambda: time.sleep(1)\njob()", [("ASH101", 13)], id="called"),
        pytest.param(
            "fetch = lambda: list(Book.objects.all())\nreturn fetch()",
            [("ASH202", 13)],
            id="orm-called",
        ),
        pytest.param(
            "job = lambda: time.sleep(1)\njob = print\njob()", [], id="rebound-then-called"
        ),
    ],
)
def test_a_lambda_kept_in_a_variable_is_a_function_of_its_own(
    body: str, expected: list[tuple[str, int]], tmp_path: Path
) -> None:
    assert _found(body, tmp_path, LAMBDAS) == expected


#: Line 8 sleeps in ``helper``; line 12 is the first line of ``view``'s body.
INDIRECT = """import asyncio
import functools
import time
from functools import partial


def helper():
    time.sleep(1)


async def view():
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("f = functools.partial(time.sleep, 1)\nf()", [("ASH101", 13)], id="partial"),
        pytest.param("functools.partial(helper)()", [("ASH101", 8)], id="partial-called"),
        pytest.param("f = partial(helper, 1)\nf()", [("ASH101", 8)], id="from-import"),
        pytest.param("f = helper\nf()", [("ASH101", 8)], id="alias"),
        pytest.param("f = helper", [], id="alias-not-called"),
        pytest.param(
            "f = functools.partial(time.sleep, 1)\nawait asyncio.to_thread(f)", [], id="handed-on"
        ),
        pytest.param(
            "await asyncio.get_running_loop().run_in_executor(None, partial(helper))",
            [],
            id="partial-handed-on",
        ),
    ],
)
def test_calls_through_partial_and_aliases_are_followed(
    body: str, expected: list[tuple[str, int]], tmp_path: Path
) -> None:
    assert _found(body, tmp_path, INDIRECT) == expected


#: ``view``'s body starts on line 83; each ``time.sleep`` sleeps a number of
#: seconds that names its function (see :func:`_sleeps`).
HIDDEN = """import functools
import time

import werkzeug.utils
from pyramid.decorator import reify


def helper():
    time.sleep(1)


def fast():
    return 1


def measure(store):
    time.sleep(11)
    return 1


class Store:
    def _count(self):
        time.sleep(8)
        return 1

    def _store_count(self, value):
        time.sleep(9)

    count = property(_count)
    settable = property(_count, _store_count)
    named = property(fget=_count)
    measured = property(measure)

    @reify
    def reified(self):
        time.sleep(10)
        return []

    @property
    def size(self):
        time.sleep(2)
        return 1

    @functools.cached_property
    def rows(self):
        time.sleep(3)
        return []

    @werkzeug.utils.cached_property
    def pages(self):
        time.sleep(7)
        return []

    def method(self):
        time.sleep(4)

    @classmethod
    def build(cls):
        return cls.size


class Held:
    def __enter__(self):
        time.sleep(5)
        return self

    def __exit__(self, *exc):
        time.sleep(6)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return None


class Fixed(Store):
    size = 0
    count = 0


async def view():
"""


def _sleeps(body: str, tmp_path: Path) -> list[int]:
    """The seconds of the ``time.sleep(n)`` calls the findings of ``view`` point at."""
    lines = HIDDEN.splitlines()
    return sorted(
        int(lines[line - 1].strip().removeprefix("time.sleep(").rstrip(")"))
        for code, line in _found(body, tmp_path, HIDDEN)
        if code == "ASH101" and line <= len(lines)
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("store = Store()\nreturn store.size", [2], id="property"),
        pytest.param("store = Store()\nreturn store.rows", [3], id="cached-property"),
        pytest.param("store = Store()\nreturn store.pages", [7], id="werkzeug-cached-property"),
        pytest.param("store = Store()\nreturn store.reified", [10], id="pyramid-reify"),
        pytest.param("store = Store()\nreturn store.count", [8], id="property-call"),
        pytest.param(
            "store = Store()\nreturn store.settable", [8], id="property-call-with-a-setter"
        ),
        pytest.param("store = Store()\nstore.settable = 2", [], id="property-call-assigned"),
        pytest.param("store = Store()\nreturn store.named", [8], id="property-call-fget"),
        pytest.param(
            "store = Store()\nreturn store.measured", [11], id="property-call-module-function"
        ),
        pytest.param("return Store.count", [], id="property-call-read-on-the-class"),
        pytest.param(
            "fixed = Fixed()\nreturn fixed.count", [], id="class-attribute-shadows-property-call"
        ),
        pytest.param("fixed = Fixed()\nreturn fixed.settable", [8], id="inherited-property-call"),
        pytest.param("fixed = Fixed()\nreturn fixed.reified", [10], id="inherited-reify"),
        pytest.param("store = Store()\nreturn store.method", [], id="method-not-called"),
        pytest.param("store = Store()\nreturn store.method()", [4], id="method-called"),
        pytest.param("return Store.size", [], id="read-on-the-class"),
        pytest.param("return Store.build", [], id="classmethod-reads-cls"),
        pytest.param("kind = Store\nreturn kind.size", [], id="read-on-a-name-bound-to-the-class"),
        pytest.param(
            "kind = Store\nstore = kind()\nreturn store.size", [2], id="class-alias-built"
        ),
        pytest.param(
            "fixed = Fixed()\nreturn fixed.size", [], id="class-attribute-shadows-property"
        ),
        pytest.param("fixed = Fixed()\nreturn fixed.rows", [3], id="inherited-property"),
        pytest.param("store: Store = make()\nreturn store.size", [2], id="annotated"),
        pytest.param("with Held():\n    pass", [5, 6], id="with"),
        pytest.param("held = Held()\nwith held as h:\n    pass", [5, 6], id="with-variable"),
        pytest.param("async with Held():\n    pass", [], id="async-with"),
        pytest.param("with open('x') as fh:\n    pass", [], id="with-external"),
        pytest.param(
            "handlers = {'a': helper, 'b': fast}\nreturn handlers['a']()", [1], id="dispatch"
        ),
        pytest.param(
            "handlers = {'b': fast}\nhandlers['a'] = helper\nreturn handlers['a']()",
            [1],
            id="dispatch-added",
        ),
        pytest.param(
            "handlers = {'a': helper, 'b': lambda: 1}\nreturn handlers['a']()",
            [],
            id="dispatch-not-all-known",
        ),
        pytest.param(
            "handlers = {'a': helper}\nhandlers = {'a': fast}\nreturn handlers['a']()",
            [],
            id="dispatch-rebound",
        ),
        pytest.param(
            "handlers = {'a': helper}\nreturn handlers['a']", [], id="dispatch-not-called"
        ),
        pytest.param(
            "handlers = {'a': helper}\nif (handlers := make()):\n    handlers['a']()",
            [],
            id="dispatch-rebound-by-walrus",
        ),
        pytest.param(
            "handlers = {'a': helper}\ntry:\n    pass\nexcept Exception as handlers:\n"
            "    handlers['a']()",
            [],
            id="dispatch-rebound-by-except",
        ),
        pytest.param(
            "handlers = {'a': helper}\nreturn [handlers['a']() for handlers in make()]",
            [],
            id="dispatch-shadowed-in-comprehension",
        ),
        pytest.param(
            "handlers = {'a': helper}\nfrom other import handlers\nreturn handlers['a']()",
            [],
            id="dispatch-rebound-by-import",
        ),
        pytest.param(
            "handlers = {'a': helper}\nrows = [h for h in make()]\nreturn handlers['a']()",
            [1],
            id="dispatch-kept-past-comprehension",
        ),
    ],
)
def test_properties_context_managers_and_local_dispatch_dicts_are_followed(
    body: str, expected: list[int], tmp_path: Path
) -> None:
    assert _sleeps(body, tmp_path) == expected


def test_a_property_read_on_self_is_followed(tmp_path: Path) -> None:
    source = HIDDEN.replace(
        "    @classmethod\n",
        "    async def total(self):\n        return self.size\n\n    @classmethod\n",
    )
    (tmp_path / "m.py").write_text(source + "    return 0\n", encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    chains = [[hop.callee for hop in f.chain] for f in result.findings]
    assert chains == [["m.Store.size.__get__", "time.sleep"]]


@pytest.mark.parametrize(
    ("attribute", "getter", "seconds"),
    [
        pytest.param("count", "m.Store._count", 8, id="property-call"),
        pytest.param("measured", "m.measure", 11, id="property-call-module-function"),
        pytest.param("reified", "m.Store.reified", 10, id="pyramid-reify"),
    ],
)
def test_a_property_call_or_reify_read_on_self_is_followed_with_its_chain(
    tmp_path: Path, attribute: str, getter: str, seconds: int
) -> None:
    source = HIDDEN.replace(
        "    @classmethod\n",
        f"    async def read(self):\n        return self.{attribute}\n\n    @classmethod\n",
    )
    (tmp_path / "m.py").write_text(source + "    return 0\n", encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    [found] = result.findings
    assert found.snippet == f"time.sleep({seconds})"
    assert [(hop.function, hop.callee) for hop in found.chain] == [
        ("m.Store.read", f"m.Store.{attribute}.__get__"),
        (getter, "time.sleep"),
    ]


#: ``property`` here is not the builtin: a call of it makes no property.
NOT_THE_BUILTIN = """import time

{binding}


class Store:
    def _count(self):
        time.sleep(8)
        return 1

    count = property(_count)


async def view():
    store = Store()
    return store.count
"""


@pytest.mark.parametrize(
    "binding",
    [
        pytest.param("from descriptors import property", id="imported-from-another-module"),
        pytest.param("def property(getter):\n    return getter", id="project-function"),
    ],
)
def test_a_call_of_another_function_named_property_is_not_followed(
    tmp_path: Path, binding: str
) -> None:
    source = NOT_THE_BUILTIN.format(binding=binding)
    (tmp_path / "m.py").write_text(source, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert result.errors == []
    assert result.findings == []
    # The same class with the builtin: the getter runs.
    (tmp_path / "m.py").write_text(NOT_THE_BUILTIN.format(binding=""), encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert [(f.snippet, len(f.chain)) for f in result.findings] == [("time.sleep(8)", 2)]
