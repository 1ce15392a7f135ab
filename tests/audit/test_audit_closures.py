"""A nested function reads its enclosing function's names before the module's."""

from __future__ import annotations

from pathlib import Path

from asgishift.audit._model import AuditConfig
from asgishift.audit.engine import audit_paths

MODULE = """import time


def pause():
    time.sleep(1)


def make_runner(pause):
    async def run():
        pause()

    return run


def make_printer():
    pause = print

    async def run():
        pause("x")

    return run


def make_sleeper():
    async def run():
        pause()

    return run


def make_fixture_user(pause, calls):
    async def run():
        for _ in range(calls):
            pause()

    return run
"""


def test_a_closure_reads_the_enclosing_parameter_or_local_not_the_module_function(
    tmp_path: Path,
) -> None:
    # pytest fixtures are the common case: a test's parameter named like a
    # module-level fixture function, read by an async def nested in the test.
    (tmp_path / "m.py").write_text(MODULE, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert result.errors == []
    reached = sorted((f.code, f.line, f.chain[0].function) for f in result.findings if f.chain)
    assert reached == [("ASH101", 5, "m.make_sleeper.run")]


def test_a_closure_reads_the_enclosing_parameter_s_annotated_type(tmp_path: Path) -> None:
    source = (
        "from pathlib import Path\n\n\n"
        "async def test_stream(fname: Path):\n"
        "    async def stream():\n"
        "        with fname.open('rb') as f:\n"
        "            yield f.read()\n\n"
        "    return stream\n"
    )
    (tmp_path / "t.py").write_text(source, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert result.errors == []
    assert sorted((f.code, f.line, f.col) for f in result.findings) == [
        ("ASH105", 6, 14),
        ("ASH105", 7, 19),
    ]


def test_a_comprehension_assigning_an_attribute_does_not_hide_its_object(tmp_path: Path) -> None:
    # `for self.current in items` binds no name: `self` stays the instance.
    source = (
        "import time\n\n\n"
        "class Box:\n"
        "    def slow(self):\n"
        "        time.sleep(1)\n\n"
        "    async def run(self, items):\n"
        "        return [self.slow() for self.current in items]\n"
    )
    (tmp_path / "box.py").write_text(source, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert result.errors == []
    assert [(f.code, f.line, f.chain[0].function) for f in result.findings] == [
        ("ASH101", 6, "box.Box.run")
    ]
