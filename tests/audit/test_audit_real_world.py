"""Defects found by auditing released projects, each reduced to a small project.

Every test names the project file that showed the defect. The projects were
inputs only: the code below is written for the test, in the shape of theirs.
"""

from __future__ import annotations

from pathlib import Path

from audit_project import audited, findings_of

from asgishift.audit.fix import fix_findings

# -- method resolution order ---------------------------------------------------
# django-ninja-extra's ``class AsyncOperation(Operation, NinjaAsyncOperation)``,
# both deriving from django-ninja's ``Operation``: ``await self._run_checks()``
# runs ``NinjaAsyncOperation._run_checks`` (an ``async def``), not the sync
# ``Operation._run_checks`` that calls ``async_to_sync``. The audit searched
# the bases depth-first (AsyncOperation, Operation, ninja's Operation, ...)
# and reported ASH301 in ninja/operation.py:337 through the wrong method.

DIAMOND = """import time


class Base:
    def check(self):
        time.sleep(1)


class AsyncBase(Base):
{override}


class Mixin(Base):
    pass


class View(Mixin, AsyncBase):
    async def run(self):
        await self.check()
"""


def test_a_diamond_resolves_methods_in_c3_order(tmp_path: Path) -> None:
    # View's MRO is View, Mixin, AsyncBase, Base: AsyncBase.check wins.
    source = DIAMOND.format(override="    async def check(self):\n        pass")
    assert findings_of(tmp_path, {"views.py": source}, "ASH101") == []
    # Without the override, Base.check is still what runs.
    source = DIAMOND.format(override="    pass")
    found = findings_of(tmp_path, {"views.py": source}, "ASH101")
    assert [(f.line, [hop.function for hop in f.chain]) for f in found] == [
        (6, ["views.View.run", "views.Base.check"])
    ]


# -- star imports --------------------------------------------------------------
# django-cms's cms/models/__init__.py re-exports its models with
# ``from .apphooks_reload import *``; ApphookReloadMiddleware.__acall__ ->
# ensure_urlconf_is_up_to_date() -> get_global_revision() ->
# UrlconfRevision.get_or_create_revision(), whose ``cls.objects.get_or_create``
# (cms/models/apphooks_reload.py:26) the audit missed: names bound by
# ``from m import *`` were not resolved at all.

STAR_PACKAGE = {
    "app/__init__.py": "",
    "app/models/__init__.py": "from .revision import *  # noqa: F403\n",
    "app/models/revision.py": (
        "from django.db import models\n\n\n"
        "class Revision(models.Model):\n"
        "    value = models.CharField(max_length=40)\n\n"
        "    @classmethod\n"
        "    def current(cls):\n"
        "        obj, _ = cls.objects.get_or_create(pk=1)\n"
        "        return obj.value\n"
    ),
    "app/utils/__init__.py": "",
    "app/utils/reload.py": (
        "def revision():\n    from ..models import Revision\n\n    return Revision.current()\n"
    ),
    "app/middleware.py": (
        "from app.utils import reload\n\n\n"
        "class ReloadMiddleware:\n"
        "    async def __acall__(self, request):\n"
        "        reload.revision()\n"
    ),
}


def test_a_package_re_export_by_star_import_is_followed(tmp_path: Path) -> None:
    found = findings_of(tmp_path, STAR_PACKAGE, "ASH201")
    assert [(f.path, f.line) for f in found] == [("app/models/revision.py", 9)]
    assert [hop.callee for hop in found[0].chain] == [
        "app.utils.reload.revision",
        "app.models.Revision.current",
        "cls.objects.get_or_create",
    ]


STAR_VIEWS = {
    "app/__init__.py": "",
    "app/helpers.py": "import time\n\n\ndef slow():\n    time.sleep(1)\n",
    "app/models.py": (
        "from django.db import models\n\n\n"
        "class Book(models.Model):\n    title = models.CharField(max_length=10)\n"
    ),
    "app/views.py": (
        "from time import *  # noqa: F403\n\n"
        "from .helpers import *  # noqa: F403\n"
        "from .models import *  # noqa: F403\n\n\n"
        "async def helper_view(request):\n    slow()\n\n\n"
        "async def sleep_view(request):\n    sleep(1)\n\n\n"
        "async def save_view(request):\n    book = Book(title='x')\n    book.save()\n"
    ),
}


def test_names_bound_by_star_imports_are_resolved(tmp_path: Path) -> None:
    findings = audited(tmp_path, STAR_VIEWS)
    assert sorted((f.code, f.path, f.line) for f in findings) == [
        ("ASH101", "app/helpers.py", 5),  # slow() from ``from .helpers import *``
        ("ASH101", "app/views.py", 12),  # sleep() from ``from time import *``
        ("ASH204", "app/views.py", 17),  # Book from ``from .models import *``
    ]


def test_the_last_star_import_binding_a_name_wins(tmp_path: Path) -> None:
    files = {
        "app/__init__.py": "",
        "app/slow.py": "import time\n\n\ndef helper():\n    time.sleep(1)\n",
        "app/fast.py": "def helper():\n    return 1\n\n\ndef _private():\n    return 2\n",
        "app/views.py": (
            "from .slow import *  # noqa: F403\n"
            "from .fast import *  # noqa: F403\n\n\n"
            "async def view(request):\n    return helper()\n"
        ),
    }
    assert findings_of(tmp_path, files, "ASH101") == []
    files["app/views.py"] = files["app/views.py"].replace(
        "from .slow import *  # noqa: F403\nfrom .fast import *",
        "from .fast import *  # noqa: F403\nfrom .slow import *",
    )
    assert [f.path for f in findings_of(tmp_path, files, "ASH101")] == ["app/slow.py"]


# -- lambdas kept by a lazy object ---------------------------------------------
# django-cms's CurrentPageMiddleware.__acall__ (cms/middleware/page.py:26) sets
# ``request.current_page = SimpleLazyObject(lambda: get_page(request))``:
# nothing runs until the page is read. The audit walked the lambda as if it
# were called there and reported get_page()'s queries (ASH201 in
# cms/appresolver.py:44, ASH207 in cms/utils/__init__.py:40) from __acall__.

LAZY = """import time

from django.utils.functional import SimpleLazyObject, lazy


def get_page(request):
    time.sleep(1)


async def middleware(request):
    request.page = SimpleLazyObject(lambda: get_page(request))
    request.title = lazy(lambda: get_page(request), str)


async def ranked(pages):
    return sorted(pages, key=lambda page: get_page(page))
"""


def test_a_lambda_kept_by_a_lazy_object_does_not_run_where_it_is_written(
    tmp_path: Path,
) -> None:
    found = findings_of(tmp_path, {"views.py": LAZY}, "ASH101")
    # sorted() calls its key right away; SimpleLazyObject and lazy() do not.
    assert [f.chain[0].function for f in found] == ["views.ranked"]


# -- --fix on a @contextmanager helper -----------------------------------------
# litestar's subprocess_async_client (litestar/testing/client/subprocess_client.py:81)
# does ``with run_app(...) as url:`` where run_app is a @contextmanager that
# sleeps. --fix refused to wrap it, as it should, but said to iterate it in a
# thread (``await sync_to_async(list)(helper())``), which fails on a context
# manager.

CONTEXT_MANAGER = """import time
from contextlib import contextmanager


@contextmanager
def running():
    time.sleep(1)
    yield "url"


async def client():
    with running() as url:
        return url
"""


def test_a_contextmanager_helper_is_refused_with_advice_that_fits_it(tmp_path: Path) -> None:
    findings = audited(tmp_path, {"client.py": CONTEXT_MANAGER})
    report = fix_findings(findings, tmp_path, unsafe=True, write=False)
    assert report.changes == []
    (line,) = report.refusals()
    assert line.startswith("client.py:12:10: client.running(): the helper is a @contextmanager")
    assert "@asynccontextmanager" in line
    assert "iterate" not in line  # the advice for a plain generator function
    assert "1 not rewritten: the helper is a @contextmanager" in report.summary(written=False)
    assert [why.name for _, why in report.skipped] == ["CONTEXT_MANAGER"]


# -- branches that never run ---------------------------------------------------
# psycopg's connection_async.py is generated from the sync module and keeps the
# sync code in a dead branch: ``if True:  # ASYNC`` then ``else:
# self.set_autocommit(value)`` (lines 571, 582, 593, 604: ASH402 on a coroutine
# that is never called), and in _conninfo_attempts_async.py:106 ``else:
# socket.getaddrinfo(...)`` (ASH103) after an awaited ``loop.getaddrinfo``.

DEAD_BRANCHES = """import asyncio
import socket
import time


async def connect():
    pass


def set_mode():
    if True:  # ASYNC
        raise TypeError("use the async method")
    else:
        connect()


async def resolve(host):
    if True:  # ASYNC
        infos = await asyncio.get_running_loop().getaddrinfo(host, 80)
    else:
        infos = socket.getaddrinfo(host, 80)
    if False:
        time.sleep(1)
    while 0:
        time.sleep(2)
    else:
        set_mode()
    if 1:
        time.sleep(3)
    return infos
"""


def test_a_branch_under_a_constant_test_that_never_runs_is_not_audited(tmp_path: Path) -> None:
    findings = audited(tmp_path, {"conn.py": DEAD_BRANCHES})
    # Only ``if 1: time.sleep(3)`` runs; ``while 0: ... else:`` runs its else.
    assert [(f.code, f.line) for f in findings] == [("ASH101", 29)]
