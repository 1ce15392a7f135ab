"""BlockingDetectorMiddleware in process: starts on first use, passes scopes, stops on shutdown."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from asgishift._types import Message, Receive, Scope, Send
from asgishift.audit._model import Rule
from asgishift.runtime import BlockingCallError, BlockingDetectorMiddleware


async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer the lifespan protocol; for HTTP, echo the path after a blocking sleep."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    time.sleep(0)  # noqa: ASYNC251 - the hazard under test
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode()})


async def call(app: Any, scope: Scope, inbound: list[Message]) -> list[Message]:
    """Run one ASGI call with ``inbound`` as the received messages; return what was sent."""
    queue: asyncio.Queue[Message] = asyncio.Queue()
    for message in inbound:
        queue.put_nowait(message)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, queue.get, send)
    return sent


def http_scope(path: str) -> Scope:
    return {"type": "http", "asgi": {"version": "3.0"}, "method": "GET", "path": path}


def test_lifespan_starts_and_stops_detection_and_http_passes_through(
    rules: tuple[Rule, ...],
) -> None:
    original = time.sleep
    middleware = BlockingDetectorMiddleware(lifespan_app, lag_threshold_ms=500, rules=rules)
    states: dict[str, object] = {}

    async def serve() -> tuple[list[Message], list[Message]]:
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        inbox.put_nowait({"type": "lifespan.startup"})
        lifespan_sent: list[Message] = []
        started = asyncio.Event()

        async def send(message: Message) -> None:
            lifespan_sent.append(message)
            started.set()

        lifespan = asyncio.ensure_future(
            middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
        )
        await started.wait()
        states["patched"] = time.sleep is not original
        states["monitoring"] = middleware.monitor is not None and middleware.monitor.running
        response = await call(middleware, http_scope("/orders"), [])
        inbox.put_nowait({"type": "lifespan.shutdown"})
        await lifespan
        return lifespan_sent, response

    lifespan_sent, response = asyncio.run(serve())
    assert states == {"patched": True, "monitoring": True}
    assert lifespan_sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]
    assert response == [
        {"type": "http.response.start", "status": 200, "headers": []},
        {"type": "http.response.body", "body": b"/orders"},
    ]
    # Shutdown uninstalled the detector and stopped the monitor.
    assert middleware.detector is None
    assert middleware.monitor is None
    assert time.sleep is original


def test_first_request_starts_detection_without_lifespan(rules: tuple[Rule, ...]) -> None:
    middleware = BlockingDetectorMiddleware(lifespan_app, lag_threshold_ms=0, rules=rules)
    try:
        asyncio.run(call(middleware, http_scope("/first"), []))
        assert middleware.detector is not None
        assert [(e.code, e.call) for e in middleware.detector.events] == [("ASH101", "time.sleep")]
        assert middleware.monitor is None  # 0 turns the lag monitor off
    finally:
        middleware.stop()
    assert middleware.detector is None


def test_raise_on_block_fails_the_request(rules: tuple[Rule, ...]) -> None:
    middleware = BlockingDetectorMiddleware(
        lifespan_app, lag_threshold_ms=0, raise_on_block=True, rules=rules
    )
    try:
        with pytest.raises(BlockingCallError, match=r"ASH101 blocking call time\.sleep\(\)"):
            asyncio.run(call(middleware, http_scope("/boom"), []))
    finally:
        middleware.stop()


def test_new_loop_gets_its_own_lag_monitor(rules: tuple[Rule, ...]) -> None:
    middleware = BlockingDetectorMiddleware(lifespan_app, lag_threshold_ms=500, rules=rules)
    try:
        asyncio.run(call(middleware, http_scope("/a"), []))
        first = middleware.monitor
        asyncio.run(call(middleware, http_scope("/b"), []))
        assert first is not None
        assert middleware.monitor is not None
        assert middleware.monitor is not first
        assert not first.running
    finally:
        middleware.stop()


def test_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="lag_threshold_ms must be 0"):
        BlockingDetectorMiddleware(lifespan_app, lag_threshold_ms=-1)


def test_its_own_monitor_is_not_reported_with_every_rule_watched() -> None:
    # Every default rule, Thread.join (ASH108) included: stopping the lag monitor at
    # shutdown, or for a new loop, joins its watchdog thread on the loop's thread.
    middleware = BlockingDetectorMiddleware(lifespan_app, lag_threshold_ms=500, raise_on_block=True)
    original = time.sleep

    async def serve() -> list[Message]:
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        inbox.put_nowait({"type": "lifespan.startup"})
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)
            if message["type"] == "lifespan.startup.complete":
                inbox.put_nowait({"type": "lifespan.shutdown"})

        await middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
        return sent

    async def ping(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    try:
        quiet = BlockingDetectorMiddleware(ping, lag_threshold_ms=500, raise_on_block=True)
        for path in ("/first-loop", "/second-loop"):  # a new loop stops the old monitor
            asyncio.run(call(quiet, http_scope(path), []))
        assert quiet.detector is not None
        assert quiet.detector.events == []
    finally:
        quiet.stop()
    assert asyncio.run(serve()) == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]
    assert (middleware.detector, middleware.monitor) == (None, None)
    assert time.sleep is original


def test_nested_middlewares_report_each_blocker_once(
    rules: tuple[Rule, ...], caplog: pytest.LogCaptureFixture
) -> None:
    # The app wrapped by hand, then again by `asgishift serve --detect-blocking`.
    inner = BlockingDetectorMiddleware(lifespan_app, lag_threshold_ms=500, rules=rules)
    outer = BlockingDetectorMiddleware(inner, lag_threshold_ms=500, rules=rules)
    caplog.set_level(logging.WARNING, logger="asgishift.runtime")
    try:
        response = asyncio.run(call(outer, http_scope("/twice"), []))
        reports = [r.getMessage() for r in caplog.records if "blocking call" in r.getMessage()]
        assert len(reports) == 1, reports
        assert reports[0].startswith("ASH101 blocking call time.sleep()")
        assert response[-1] == {"type": "http.response.body", "body": b"/twice"}
        # The outer middleware detects and watches the loop; the inner passes through.
        assert (inner.detector, inner.monitors) == (None, ())
        assert outer.detector is not None
        assert len(outer.monitors) == 1
    finally:
        outer.stop()
        inner.stop()


def test_every_loop_running_the_app_in_threads_is_watched(rules: tuple[Rule, ...]) -> None:
    # Two loops in threads serve the app at once; the second one's first request
    # must not stop the watch on the first, which then holds its loop.
    first_loop_waits = threading.Event()
    second_loop_served = threading.Event()
    errors: list[BaseException] = []

    def first_loop_stalls() -> int:
        return sum(m.stalls_seen for m in middleware.monitors if m.loop is first_loop)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/hold":
            first_loop_waits.set()
            await asyncio.to_thread(second_loop_served.wait, 10)
            # Hold the loop (a CPU-bound call the detector cannot see) until the
            # lag monitor has caught it, or give up at the deadline.
            deadline = time.monotonic() + 10
            while not first_loop_stalls() and time.monotonic() < deadline:
                pass
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    middleware = BlockingDetectorMiddleware(app, lag_threshold_ms=50, rules=rules)
    first_loop = asyncio.new_event_loop()

    def run_first() -> None:
        try:
            first_loop.run_until_complete(call(middleware, http_scope("/hold"), []))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def run_second() -> None:
        async def serve() -> None:
            await call(middleware, http_scope("/quick"), [])
            second_loop_served.set()

        try:
            first_loop_waits.wait(10)
            asyncio.run(serve())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert first_loop_stalls() == 1
    finally:
        middleware.stop()
        first_loop.close()
    assert middleware.monitors == ()
