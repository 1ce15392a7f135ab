"""The per-process event-loop thread of ASGIToWSGI: one per process, ordered hand-offs,
a fresh loop after ``fork()`` (gunicorn ``--preload``), and a clean stop at exit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from asgishift.bridge._loop_thread import LoopThread, new_loop, process_loop

SRC = Path(__file__).resolve().parents[2] / "src"


def test_one_loop_per_process() -> None:
    first = process_loop()
    assert process_loop() is first
    assert first.pid == os.getpid()
    assert first.thread.is_alive()
    assert first.thread.daemon


@pytest.fixture(params=["asyncio", "auto"])
def own_loop_thread(request: pytest.FixtureRequest) -> Iterator[LoopThread]:
    """A loop thread of each kind: asyncio's loop wakes through the inbox's pipe, uvloop
    (``auto`` when it is installed) through ``call_soon_threadsafe``."""
    loop_thread = LoopThread(kind=request.param, name="test-calls")
    try:
        yield loop_thread
    finally:
        loop_thread.stop()


def test_calls_from_many_threads_run_in_order_per_thread(own_loop_thread: LoopThread) -> None:
    loop_thread = own_loop_thread
    seen: list[tuple[int, int]] = []
    done = threading.Event()
    total = 8 * 500

    def record(worker: int, number: int) -> None:
        assert threading.get_ident() == loop_thread.thread.ident
        seen.append((worker, number))
        if len(seen) == total:
            done.set()

    def worker(index: int) -> None:
        for number in range(500):
            loop_thread.call(record, index, number)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert done.wait(10)
    for index in range(8):
        assert [n for w, n in seen if w == index] == list(range(500))


def test_a_failing_call_is_logged_and_the_next_still_runs(
    caplog: pytest.LogCaptureFixture, own_loop_thread: LoopThread
) -> None:
    loop_thread = own_loop_thread
    ran = threading.Event()

    def boom() -> None:
        raise ValueError("boom")

    loop_thread.call(boom)
    loop_thread.call(ran.set)
    assert ran.wait(10)
    assert any("hand-off to the event loop failed" in r.getMessage() for r in caplog.records)


def test_a_call_after_stop_is_refused(own_loop_thread: LoopThread) -> None:
    own_loop_thread.stop()
    assert not own_loop_thread.thread.is_alive()
    with pytest.raises(RuntimeError):
        own_loop_thread.call(print, "never")


def test_run_returns_the_result_and_times_out() -> None:
    loop_thread = process_loop()

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert loop_thread.run(answer(), 5) == 42
    with pytest.raises(TimeoutError):
        loop_thread.run(asyncio.sleep(10), 0.05)


def test_stop_runs_exit_callbacks_then_joins() -> None:
    loop_thread = LoopThread(kind="asyncio", name="test-loop")
    order: list[str] = []
    loop_thread.at_exit(lambda: order.append("first registered"))
    loop_thread.at_exit(lambda: order.append("last registered"))
    loop_thread.stop()
    assert order == ["last registered", "first registered"]
    assert not loop_thread.thread.is_alive()
    assert loop_thread.loop.is_closed()
    loop_thread.stop()  # twice is harmless


def test_stop_cancels_the_tasks_still_running_before_closing_their_generators(
    own_loop_thread: LoopThread,
) -> None:
    """A task still running at exit (a request left behind, a fire-and-forget task) is
    cancelled and its clean-up runs in that task, as ``asyncio.run`` does; before, the
    loop closed its async generators from outside the task and dropped the task."""
    events: list[str] = []
    holding = threading.Event()

    @contextlib.asynccontextmanager
    async def resource() -> AsyncIterator[None]:  # a database session, say
        try:
            yield
        finally:
            task = asyncio.current_task()
            events.append(f"released in {task.get_name() if task else None}")

    async def task_body() -> None:
        async with resource():
            holding.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                events.append("cancelled")
                raise

    loop = own_loop_thread.loop
    own_loop_thread.call(lambda: loop.create_task(task_body(), name="holder"))
    assert holding.wait(5.0)
    own_loop_thread.stop()
    assert events == ["cancelled", "released in holder"]


@pytest.mark.parametrize("kind", ["asyncio", "auto"])
def test_new_loop(kind: str) -> None:
    loop = new_loop(kind)  # type: ignore[arg-type]
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
        if kind == "asyncio":
            assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()


def test_fork_gets_a_fresh_loop() -> None:
    """A forked child (a gunicorn --preload worker) must not use the parent's loop."""
    script = textwrap.dedent(
        """
        import asyncio, os, sys
        from asgishift.bridge._loop_thread import process_loop

        async def where():
            return os.getpid()

        parent = process_loop()
        assert parent.run(where(), 5) == os.getpid()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            child = process_loop()
            ok = (
                child is not parent
                and child.pid == os.getpid()
                and child.thread.is_alive()
                and child.run(where(), 5) == os.getpid()
            )
            os.write(write, b"fresh" if ok else b"shared")
            os._exit(0)
        os.waitpid(pid, 0)
        print(os.read(read, 100).decode(), process_loop() is parent)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["fresh", "True"]
