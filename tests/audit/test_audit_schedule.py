"""The audit's pipeline: the closure grows file by file, the parser takes work while it reports."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from asgishift.audit._closure import Closure, Facts, file_facts, import_closure
from asgishift.audit._discover import SourceFile
from asgishift.audit._parse import PARSED_ONLY, Outcome, Parser, Step, Task

#: module name -> source text: seeds, a chain of imports from a seed, a
#: module importing a coroutine's module and calling it (ASH402's "late"
#: files), and modules nothing async reaches.
TREE = {
    "app.views": "from app import services\n\n\nasync def view():\n    services.run()\n",
    "app.services": "from app.db import query\n\n\ndef run():\n    query()\n",
    "app.db": "import sqlite3\nfrom app import util\n\n\ndef query():\n    util.x()\n",
    "app.util": "def x():\n    return 1\n",
    "app.tasks": "async def fetch():\n    return 1\n",
    "app.cron": "from app.tasks import fetch\nfrom app import helpers\n\n\ndef tick():\n"
    "    fetch()\n",
    "app.helpers": "def h():\n    return 2\n",
    "app.cli": "from app import util\n\n\ndef main():\n    util.x()\n",
    "app.unused": "import os\n\n\ndef f():\n    return os.sep\n",
}


def _sources() -> tuple[list[SourceFile], dict[str, Facts], dict[str, bytes]]:
    files: list[SourceFile] = []
    facts: dict[str, Facts] = {}
    contents: dict[str, bytes] = {}
    for module, text in sorted(TREE.items()):
        rel = module.replace(".", "/") + ".py"
        source = SourceFile(f"/nowhere/{rel}", rel, module, False)
        files.append(source)
        contents[rel] = text.encode()
        facts[rel] = file_facts(source, contents[rel])
    return files, facts, contents


def test_import_closure_of_the_sample_tree() -> None:
    files, facts, contents = _sources()
    assert sorted(import_closure(files, facts, contents)) == [
        "app/cron.py",
        "app/db.py",
        "app/helpers.py",
        "app/services.py",
        "app/tasks.py",
        "app/util.py",
        "app/views.py",
    ]


@pytest.mark.parametrize("seed", range(6))
def test_closure_grown_in_any_order_is_the_same_and_reports_each_file_once(seed: int) -> None:
    files, facts, contents = _sources()
    order = files[:]
    random.Random(seed).shuffle(order)
    closure = Closure(files)
    reported: list[str] = []
    for source in order:
        new = closure.add(source, facts[source.rel])
        # A file is reported once its own facts are known, never before.
        assert all(s.rel in {o.rel for o in order[: order.index(source) + 1]} for s in new)
        reported.extend(s.rel for s in new)
    final = closure.finish(contents)
    assert final == import_closure(files, facts, contents)
    assert len(reported) == len(set(reported))
    # Everything but the file that only a coroutine's caller pulls in
    # (helpers, through cron) is known before the end.
    assert set(reported) == final - {"app/cron.py", "app/helpers.py"}


def _disk_sources(tmp_path: Path, count: int) -> tuple[list[SourceFile], dict[str, bytes]]:
    files: list[SourceFile] = []
    contents: dict[str, bytes] = {}
    for i in range(count):
        path = tmp_path / f"m{i}.py"
        data = f"def f{i}():\n    return {i}\n" if i % 5 else f"def f{i}(:\n"
        path.write_text(data, encoding="utf-8")
        files.append(SourceFile(str(path), path.name, f"m{i}", False))
        contents[path.name] = data.encode()
    return files, contents


@pytest.mark.parametrize("jobs", [1, 2])
def test_tasks_submitted_while_results_are_read_are_reported_too(tmp_path: Path, jobs: int) -> None:
    files, contents = _disk_sources(tmp_path, 40)
    parser = Parser(jobs)
    outcomes: list[Outcome] = []
    try:
        parser.start(contents)
        assert parser.parallel is (jobs > 1)
        parser.submit([Task(s, Step.SCAN) for s in files[:20]], 8)
        later = [Task(s, Step.PARSE) for s in files[20:]]
        for batch in parser.results(contents):
            outcomes.extend(batch)
            if later:
                parser.submit(later, 8)
                later = []
    finally:
        parser.close()
    by_rel = {o.rel: o for o in outcomes}
    assert len(outcomes) == len(by_rel) == 40
    assert all(by_rel[s.rel].facts is not None for s in files[:20])
    assert all(by_rel[s.rel].facts is None for s in files[20:])
    broken = sorted(rel for rel, o in by_rel.items() if o.entry not in (None, PARSED_ONLY))
    assert broken == sorted(f"m{i}.py" for i in range(20, 40, 5))


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_file_edited_after_it_was_read_is_audited_as_read(tmp_path: Path, jobs: int) -> None:
    """A worker that reads a file again must not mix its new bytes with the old digest.

    The first read (``contents`` and ``stamps``) saw ``import os``; the file on disk now
    says ``import re``, same size, newer mtime. Its facts must be those of the bytes read
    first, which are what the main process digests and caches.
    """
    files: list[SourceFile] = []
    for i in range(12):
        path = tmp_path / f"m{i}.py"
        path.write_text("import os\n", encoding="utf-8")
        files.append(SourceFile(str(path), path.name, f"m{i}", False))
    parser = Parser(jobs)
    contents: dict[str, bytes] = {}
    stamps: dict[str, tuple[int, int]] = {}
    outcomes: list[Outcome] = []
    try:
        parser.start(contents, stamps)
        # The pool forks at its first batch: one file first, so that the workers
        # are forked before the others are read, and read those from disk.
        warm = tmp_path / "warm.py"
        warm.write_text("import os\n", encoding="utf-8")
        contents["warm.py"] = b"import os\n"
        parser.submit([Task(SourceFile(str(warm), "warm.py", "warm", False), Step.SCAN)], 1)
        assert [o.rel for batch in parser.results(contents) for o in batch] == ["warm.py"]
        for source in files:
            stat = Path(source.abspath).stat()
            contents[source.rel] = Path(source.abspath).read_bytes()
            stamps[source.rel] = (stat.st_size, stat.st_mtime_ns)
        edited = Path(files[3].abspath)
        edited.write_text("import re\n", encoding="utf-8")
        later = stamps[files[3].rel][1] + 5_000_000_000
        os.utime(edited, ns=(later, later))
        parser.submit([Task(s, Step.SCAN) for s in files], 4)
        for batch in parser.results(contents):
            outcomes.extend(batch)
    finally:
        parser.close()
    by_rel = {o.rel: o for o in outcomes}
    assert len(outcomes) == len(by_rel) == 12
    first = file_facts(files[3], b"import os\n")
    assert first != file_facts(files[3], b"import re\n")
    assert by_rel[files[3].rel].facts == first
    assert all(by_rel[s.rel].facts == first for s in files)
