"""``PipeOutbox``: an ASGIToWSGI request's batches, from the loop thread to its WSGI thread."""

from __future__ import annotations

import gc
import os
import queue
import subprocess
import sys
import threading
from typing import Any

import pytest

from asgishift.bridge import _outbox
from asgishift.bridge._outbox import PipeOutbox, new_outbox

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")

#: Seconds a test waits for something that should happen at once (never reached when it passes).
DEADLINE = 10.0


def open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def in_thread(fn: Any) -> Any:
    """Run ``fn()`` on a new thread, wait for it, and return its result."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    return result[0]


def test_items_come_out_in_the_order_they_were_put() -> None:
    outbox: PipeOutbox[int] = PipeOutbox()
    for item in range(5):
        outbox.put(item)
    assert [outbox.get(timeout=DEADLINE) for _ in range(5)] == [0, 1, 2, 3, 4]


def test_a_waiting_thread_gets_every_item_another_thread_puts() -> None:
    # Ping-pong: the getter is asleep in the pipe for some rounds and finds the
    # item already there in others; neither loses an item or hangs.
    outbox: PipeOutbox[int] = PipeOutbox()
    back: queue.SimpleQueue[int] = queue.SimpleQueue()

    def poster() -> None:
        for item in range(2000):
            outbox.put(item)
            assert back.get(timeout=DEADLINE) == item

    thread = threading.Thread(target=poster)
    thread.start()
    got = []
    for _ in range(2000):
        got.append(outbox.get(timeout=DEADLINE))
        back.put(got[-1])
    thread.join(DEADLINE)
    assert got == list(range(2000))


def test_get_without_a_timeout_wakes_for_an_item_put_later() -> None:
    outbox: PipeOutbox[str] = PipeOutbox()
    started = threading.Event()

    def poster() -> None:
        started.wait(DEADLINE)
        outbox.put("late")

    thread = threading.Thread(target=poster)
    thread.start()
    started.set()
    assert outbox.get() == "late"
    thread.join(DEADLINE)


def test_get_raises_empty_at_its_timeout_and_when_told_not_to_block() -> None:
    outbox: PipeOutbox[int] = PipeOutbox()
    with pytest.raises(queue.Empty):
        outbox.get(timeout=0.02)
    with pytest.raises(queue.Empty):
        outbox.get(timeout=0)
    with pytest.raises(queue.Empty):
        outbox.get(block=False)
    outbox.put(7)
    assert outbox.get(block=False) == 7


def test_a_wake_up_left_by_an_earlier_request_is_not_an_item() -> None:
    earlier: PipeOutbox[str] = PipeOutbox()
    earlier.put("a")
    earlier.put("b")
    assert earlier.get() == "a"  # taken without reading its byte: two bytes stay
    later: PipeOutbox[str] = PipeOutbox()  # the same thread, so the same pipe
    with pytest.raises(queue.Empty):
        later.get(timeout=0.02)
    later.put("c")
    assert later.get(timeout=DEADLINE) == "c"
    assert earlier.get(block=False) == "b"


def test_a_thread_keeps_one_pipe_for_all_its_requests() -> None:
    def serve_many() -> set[int]:
        first: PipeOutbox[int] = PipeOutbox()
        first.put(0)
        first.get()
        before = open_fds()
        for item in range(500):
            outbox: PipeOutbox[int] = PipeOutbox()
            outbox.put(item)
            assert outbox.get(timeout=DEADLINE) == item
        return open_fds() - before

    assert in_thread(serve_many) == set()


def test_the_pipe_closes_once_its_thread_ended_and_no_outbox_holds_it() -> None:
    gc.collect()
    before = open_fds()
    outbox: PipeOutbox[int] = in_thread(PipeOutbox)
    made = open_fds() - before
    assert len(made) == 2  # the ended thread's pipe, held by the outbox
    outbox.put(1)  # a late post of a finished request: the descriptor is still its own
    assert outbox.get(timeout=DEADLINE) == 1
    del outbox
    gc.collect()
    assert open_fds() & made == set()


def test_an_outbox_waited_on_from_another_thread_moves_to_that_threads_pipe() -> None:
    outbox: PipeOutbox[str] = PipeOutbox()  # made here, iterated elsewhere
    ready = threading.Event()
    result: list[str] = []

    def iterate() -> None:
        ready.set()
        result.append(outbox.get(timeout=DEADLINE))

    thread = threading.Thread(target=iterate)
    thread.start()
    ready.wait(DEADLINE)
    outbox.put("moved")
    thread.join(DEADLINE)
    assert result == ["moved"]
    # This thread's own pipe still serves its own outboxes.
    mine: PipeOutbox[str] = PipeOutbox()
    in_thread(lambda: mine.put("mine"))
    assert mine.get(timeout=DEADLINE) == "mine"


def test_put_never_blocks_on_a_full_pipe() -> None:
    outbox: PipeOutbox[int] = PipeOutbox()
    count = 70_000  # more wake-up bytes than a pipe holds (64 KiB)
    for item in range(count):
        outbox.put(item)
    assert [outbox.get(timeout=DEADLINE) for _ in range(count)] == list(range(count))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_makes_a_pipe_of_its_own() -> None:
    parent: PipeOutbox[int] = PipeOutbox()
    parent_fd = parent._write_fd
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its new outbox's write end, and that it works
        try:
            child: PipeOutbox[int] = PipeOutbox()
            child.put(5)
            ok = child.get(timeout=DEADLINE) == 5
            os.write(write_fd, f"{child._write_fd} {ok}".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    report = os.read(read_fd, 100).decode().split()
    os.close(read_fd)
    os.waitpid(pid, 0)
    assert report[1] == "True"
    assert int(report[0]) != parent_fd


def test_new_outbox_is_a_simple_queue_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(new_outbox(), PipeOutbox)
    monkeypatch.setattr(_outbox.sys, "platform", "win32")
    fallback = new_outbox()
    assert isinstance(fallback, queue.SimpleQueue)
    fallback.put(1)
    assert fallback.get(timeout=DEADLINE) == 1


def test_a_post_at_interpreter_exit_finds_the_pipe_open() -> None:
    # Requests ended at exit (process exit, a stopping gunicorn worker) still post
    # their last batch; weakref.finalize's own exit hook must not have closed the pipe.
    code = (
        "import atexit\n"
        "outboxes = []\n"
        "def late():\n"  # registered before any finalizer: runs after finalize's hook
        "    outboxes[0].put('last')\n"
        "    print(outboxes[0].get(timeout=5))\n"
        "atexit.register(late)\n"
        "from asgishift.bridge._outbox import PipeOutbox\n"
        "outboxes.append(PipeOutbox())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "last\n", "")
