"""BlockingDetector: what it flags, what it leaves alone, and how it restores the originals."""

from __future__ import annotations

import asyncio
import builtins
import importlib
import logging
import os
import pathlib
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from time import sleep as snooze  # bound BEFORE any detector is installed
from typing import Any

import pytest

from asgishift.audit._model import Rule
from asgishift.runtime import BlockingCallError, BlockingDetector, default_rules


@pytest.fixture
def listener() -> Iterator[tuple[str, int]]:
    """A listening TCP socket on 127.0.0.1; yields its address."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[:2]


def run_on_loop(func: Callable[[], object]) -> object:
    """Call ``func`` inside a coroutine, on the event-loop thread."""

    async def handler() -> object:
        return func()

    return asyncio.run(handler())


def codes_and_calls(detector: BlockingDetector) -> list[tuple[str, str]]:
    return [(event.code, event.call) for event in detector.events]


def test_flags_time_sleep_on_the_loop_with_rule_and_stack(rules: tuple[Rule, ...]) -> None:
    def sleepy_view() -> None:
        time.sleep(0.001)

    with BlockingDetector(rules) as detector:
        run_on_loop(sleepy_view)
    assert codes_and_calls(detector) == [("ASH101", "time.sleep")]
    event = detector.events[0]
    assert event.message == "Blocking call time.sleep() stops the event loop"
    assert event.thread_name == threading.current_thread().name
    assert event.thread_id == threading.get_ident()
    last_frame = event.stack.splitlines()[-2:]
    assert "in sleepy_view" in last_frame[0]
    assert last_frame[1].strip() == "time.sleep(0.001)"


def test_flags_open_on_the_loop(rules: tuple[Rule, ...], tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("hello", encoding="utf-8")

    def read() -> str:
        with open(target, encoding="utf-8") as handle:
            return handle.read()

    with BlockingDetector(rules) as detector:
        assert run_on_loop(read) == "hello"
        assert run_on_loop(lambda: target.read_text(encoding="utf-8")) == "hello"
    assert codes_and_calls(detector) == [
        ("ASH105", "builtins.open"),
        ("ASH105", "pathlib.Path.read_text"),
    ]


def test_flags_socket_create_connection_on_the_loop(
    rules: tuple[Rule, ...], listener: tuple[str, int]
) -> None:
    def connect() -> None:
        socket.create_connection(listener, timeout=5).close()

    with BlockingDetector(rules) as detector:
        run_on_loop(connect)
    assert codes_and_calls(detector) == [("ASH103", "socket.create_connection")]


def test_asyncio_streams_on_the_loop_are_not_flagged(
    rules: tuple[Rule, ...], listener: tuple[str, int]
) -> None:
    # asyncio calls socket.socket.connect/recv on the loop thread, on
    # non-blocking sockets: those must not count even though
    # socket.socket.connect is watched.
    async def client() -> None:
        _, writer = await asyncio.open_connection(*listener)
        writer.close()
        await writer.wait_closed()

    with BlockingDetector(rules) as detector:
        asyncio.run(client())
    assert "socket.socket.connect" not in detector.unpatchable
    assert detector.events == []


async def _offload_to_thread(func: Callable[[], object]) -> object:
    return await asyncio.to_thread(func)


async def _offload_to_executor(func: Callable[[], object]) -> object:
    return await asyncio.get_running_loop().run_in_executor(None, func)


@pytest.mark.parametrize(
    "offload",
    [
        pytest.param(_offload_to_thread, id="asyncio.to_thread"),
        pytest.param(_offload_to_executor, id="run_in_executor"),
    ],
)
def test_calls_offloaded_to_worker_threads_are_not_flagged(
    rules: tuple[Rule, ...],
    listener: tuple[str, int],
    tmp_path: Path,
    offload: Callable[[Callable[[], object]], object],
) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"x")

    def blocking_work() -> None:
        time.sleep(0.001)
        with open(target, "rb") as handle:
            handle.read()
        socket.create_connection(listener, timeout=5).close()

    async def handler() -> None:
        await offload(blocking_work)  # type: ignore[misc]

    with BlockingDetector(rules) as detector:
        asyncio.run(handler())
        blocking_work()  # no loop at all on this thread either
    assert detector.events == []


def test_alias_bound_before_install_is_flagged_and_restored(rules: tuple[Rule, ...]) -> None:
    # ``snooze`` was bound at import time, before install: patching time.sleep
    # alone would miss it, so install also rebinds module globals that hold
    # the original, and uninstall puts them back.
    original = time.sleep
    assert snooze is original
    with BlockingDetector(rules) as detector:
        assert snooze is not original
        run_on_loop(lambda: snooze(0.001))
    assert codes_and_calls(detector) == [("ASH101", "time.sleep")]
    assert "snooze(0.001)" in detector.events[0].stack
    assert snooze is original


def test_uninstall_restores_the_exact_originals(rules: tuple[Rule, ...]) -> None:
    originals = {
        "sleep": time.sleep,
        "open": builtins.open,
        "create_connection": socket.create_connection,
        "read_text": vars(pathlib.Path)["read_text"],
    }
    assert "connect" not in vars(socket.socket)  # inherited from _socket.socket
    detector = BlockingDetector(rules).install()
    try:
        assert time.sleep is not originals["sleep"]
        assert time.sleep.__wrapped__ is originals["sleep"]  # type: ignore[attr-defined]
        assert "connect" in vars(socket.socket)
    finally:
        detector.uninstall()
    assert time.sleep is originals["sleep"]
    assert builtins.open is originals["open"]
    assert socket.create_connection is originals["create_connection"]
    assert vars(pathlib.Path)["read_text"] is originals["read_text"]
    assert "connect" not in vars(socket.socket)


def test_install_and_uninstall_are_idempotent_and_shared(rules: tuple[Rule, ...]) -> None:
    original = time.sleep
    first = BlockingDetector(rules)
    second = BlockingDetector(rules[:1])
    first.install()
    wrapper = time.sleep
    first.install()
    second.install()
    assert time.sleep is wrapper  # one wrapper, shared
    run_on_loop(lambda: time.sleep(0.001))
    first.uninstall()
    first.uninstall()
    assert time.sleep is wrapper  # still used by ``second``
    run_on_loop(lambda: time.sleep(0.001))
    second.uninstall()
    assert time.sleep is original
    assert codes_and_calls(first) == [("ASH101", "time.sleep")]
    assert codes_and_calls(second) == [("ASH101", "time.sleep")] * 2


def test_concurrent_install_and_uninstall_leave_the_originals(rules: tuple[Rule, ...]) -> None:
    original_sleep, original_open = time.sleep, builtins.open
    detectors = [BlockingDetector(rules) for _ in range(8)]
    errors: list[BaseException] = []

    def churn(detector: BlockingDetector) -> None:
        try:
            for _ in range(20):
                detector.install()
                detector.uninstall()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(d,)) for d in detectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert (time.sleep, builtins.open) == (original_sleep, original_open)


def test_raise_on_block_refuses_the_call(rules: tuple[Rule, ...], tmp_path: Path) -> None:
    target = tmp_path / "never-written.txt"

    def write() -> None:
        with open(target, "w", encoding="utf-8") as handle:
            handle.write("x")

    with (
        BlockingDetector(rules, raise_on_block=True) as detector,
        pytest.raises(
            BlockingCallError, match=r"ASH105 blocking call builtins\.open\(\)"
        ) as caught,
    ):
        run_on_loop(write)
    assert caught.value.event is detector.events[0]
    assert not target.exists()


def test_warning_is_logged_with_code_message_and_stack(
    rules: tuple[Rule, ...], caplog: pytest.LogCaptureFixture
) -> None:
    def nap_handler() -> None:
        time.sleep(0.001)

    with caplog.at_level(logging.WARNING, logger="asgishift.runtime"), BlockingDetector(rules):
        run_on_loop(nap_handler)
    [record] = [r for r in caplog.records if r.name == "asgishift.runtime"]
    assert record.levelno == logging.WARNING
    text = record.getMessage()
    assert text.startswith("ASH101 blocking call time.sleep() on the event-loop thread")
    assert "Blocking call time.sleep() stops the event loop" in text
    assert "in nap_handler" in text


def test_unpatchable_calls_are_listed_with_the_reason(rules: tuple[Rule, ...]) -> None:
    extra = "not_a_module_asgishift_knows.fetch"
    with BlockingDetector(rules, extra_blocking=[extra]) as detector:
        assert set(detector.unpatchable) == {"threading.Lock.acquire", extra}
        # Python < 3.13: threading.Lock is a factory function; 3.13+: an immutable C type.
        assert "cannot be" in detector.unpatchable["threading.Lock.acquire"]
        assert "not installed" in detector.unpatchable[extra]


def test_extra_blocking_names_are_reported_under_the_extra_code() -> None:
    with BlockingDetector([], extra_blocking=["os.getcwd"]) as detector:
        run_on_loop(lambda: __import__("os").getcwd())
    assert codes_and_calls(detector) == [("ASH199", "os.getcwd")]
    assert detector.events[0].message == "Blocking call os.getcwd() listed in extra_blocking"


def test_message_keeps_placeholders_it_cannot_fill() -> None:
    rule = Rule(
        code="ASH900",
        name="test-placeholders",
        summary="",
        message="{call}() in {function}",
        why="",
        example="",
        fixed="",
        calls=("time.sleep",),
    )
    with BlockingDetector([rule]) as detector:
        run_on_loop(lambda: time.sleep(0))
    assert detector.events[0].message == "time.sleep() in {function}"


def test_default_rules_come_from_the_catalogue() -> None:
    rules = default_rules()
    assert rules
    assert {rule.family for rule in rules} == {"ASH1"}
    assert all(rule.calls for rule in rules)


def test_catalogue_detector_flags_sleep_and_leaves_asyncio_subprocesses_alone() -> None:
    async def handler() -> int:
        process = await asyncio.create_subprocess_exec("true")
        return await process.wait()

    with BlockingDetector() as detector:
        assert asyncio.run(handler()) == 0
        assert detector.events == []
        run_on_loop(lambda: time.sleep(0))
    assert codes_and_calls(detector) == [("ASH101", "time.sleep")]
    assert "threading.Lock.acquire" in detector.unpatchable


def test_polling_waits_are_not_flagged_but_blocking_waits_are() -> None:
    event = threading.Event()
    semaphore = threading.Semaphore(0)

    def poll() -> None:
        event.wait(0)
        semaphore.acquire(blocking=False)
        semaphore.acquire(timeout=0)

    def wait() -> None:
        event.set()
        event.wait()

    with BlockingDetector() as detector:
        run_on_loop(poll)
        assert detector.events == []
        run_on_loop(wait)
    assert codes_and_calls(detector) == [("ASH108", "threading.Event.wait")]


def test_max_events_bounds_the_kept_events(rules: tuple[Rule, ...]) -> None:
    def nap_three_times() -> None:
        for _ in range(3):
            time.sleep(0)

    with BlockingDetector(rules, max_events=2, log=False) as detector:
        run_on_loop(nap_three_times)
    assert len(detector.events) == 2
    assert detector.dropped == 1


def test_log_repeats_off_logs_each_call_site_once(
    rules: tuple[Rule, ...], caplog: pytest.LogCaptureFixture
) -> None:
    def hot_path() -> None:
        for _ in range(3):
            time.sleep(0)  # one call site, three calls
        time.sleep(0)  # another call site

    with (
        caplog.at_level(logging.DEBUG, logger="asgishift.runtime"),
        BlockingDetector(rules, log_repeats=False) as detector,
    ):
        run_on_loop(hot_path)
    assert len(detector.events) == 4
    levels = [
        r.levelno
        for r in caplog.records
        if r.name == "asgishift.runtime" and "blocking call time.sleep()" in r.getMessage()
    ]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG, logging.WARNING]


def test_a_failing_report_never_breaks_the_call(
    rules: tuple[Rule, ...], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    class BrokenDetector(BlockingDetector):
        def _on_call(self, names: object, frame: object) -> None:
            raise LookupError("report failed")

    target = tmp_path / "still-written.txt"

    def write() -> None:
        with open(target, "w", encoding="utf-8") as handle:
            handle.write("x")

    with caplog.at_level(logging.ERROR, logger="asgishift.runtime"), BrokenDetector(rules):
        run_on_loop(write)
    assert target.read_text(encoding="utf-8") == "x"
    assert "failed to report a call to builtins.open" in caplog.text
    assert "LookupError: report failed" in caplog.text


def test_alias_bound_while_installed_is_restored_on_uninstall(
    rules: tuple[Rule, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = time.sleep
    (tmp_path / "late_import_module.py").write_text(
        "from time import sleep as nap\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "late_import_module", raising=False)
    with BlockingDetector(rules) as detector:
        late = importlib.import_module("late_import_module")
        assert late.nap is time.sleep  # the wrapper, bound by the import
        assert late.nap is not original
        run_on_loop(lambda: late.nap(0))
    assert codes_and_calls(detector) == [("ASH101", "time.sleep")]
    assert late.nap is original
    monkeypatch.delitem(sys.modules, "late_import_module")


def test_os_read_and_write_on_nonblocking_descriptors_are_not_flagged() -> None:
    read_fd, write_fd = os.pipe()
    try:

        def nonblocking() -> bytes:
            os.set_blocking(read_fd, False)
            os.set_blocking(write_fd, False)
            os.write(write_fd, b"x")
            return os.read(read_fd, 16)

        def blocking() -> bytes:
            os.set_blocking(read_fd, True)
            os.set_blocking(write_fd, True)
            os.write(write_fd, b"y")
            return os.read(read_fd, 16)

        with BlockingDetector() as detector:
            assert run_on_loop(nonblocking) == b"x"
            assert detector.events == []
            assert run_on_loop(blocking) == b"y"
        assert codes_and_calls(detector) == [("ASH105", "os.write"), ("ASH105", "os.read")]
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_log_repeats_off_tells_apart_app_sites_that_reach_one_library_call(
    rules: tuple[Rule, ...], caplog: pytest.LogCaptureFixture
) -> None:
    # A function of an installed package (a library frame) that blocks; the
    # application calls it from two places, each worth its own WARNING.
    library: dict[str, Any] = {"time": time}
    source = "def retry():\n    time.sleep(0)\n"
    exec(
        compile(source, "/opt/venv/lib/python3.12/site-packages/vendored/retry.py", "exec"), library
    )
    retry = library["retry"]

    def two_views() -> None:
        retry()  # first application site
        retry()  # second application site
        for _ in range(2):
            retry()  # third site, twice: one WARNING, then DEBUG

    with (
        caplog.at_level(logging.DEBUG, logger="asgishift.runtime"),
        BlockingDetector(rules, log_repeats=False) as detector,
    ):
        run_on_loop(two_views)
    assert len(detector.events) == 4
    levels = [
        r.levelno
        for r in caplog.records
        if r.name == "asgishift.runtime" and "blocking call time.sleep()" in r.getMessage()
    ]
    assert levels == [logging.WARNING, logging.WARNING, logging.WARNING, logging.DEBUG]
