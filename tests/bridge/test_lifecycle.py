"""Pool limits, timeouts, disconnects during responses, contexts, lifespan and websockets."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.validate import validator

import pytest
from bridge_harness import DEADLINE, FakeServer, Gate, make_scope, request, run

from asgishift._types import Message
from asgishift.bridge import ClientDisconnected, WSGIToASGI

Environ = dict[str, Any]

# request_timeout for the timeout tests (seconds): long enough that a worker
# thread always starts well within it, even on a loaded CI machine, so the
# app reliably runs before the timer fires.
TIMEOUT = 0.5


def gated_app(gate: Gate) -> Any:
    def app(environ: Environ, start_response: Any) -> list[bytes]:
        gate.wait()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    return app


def test_full_queue_gets_immediate_503_with_retry_after() -> None:
    gate = Gate()
    bridge = WSGIToASGI(gated_app(gate), max_workers=1, max_queue=1, retry_after=7)

    async def main() -> tuple[FakeServer, FakeServer, FakeServer]:
        first, queued, refused = FakeServer(), FakeServer(), FakeServer()
        t1 = asyncio.create_task(bridge(make_scope(), first.receive, first.send))
        await gate.until_entered()
        t2 = asyncio.create_task(bridge(make_scope(), queued.receive, queued.send))
        for _ in range(1000):  # let t2 reach the queue before the third request
            if bridge.pool.in_flight == 2:
                break
            await asyncio.sleep(0)
        assert bridge.pool.in_flight == 2
        await asyncio.wait_for(bridge(make_scope(), refused.receive, refused.send), DEADLINE)
        assert not t1.done()
        assert not t2.done()
        gate.released.set()
        await asyncio.wait_for(asyncio.gather(t1, t2), DEADLINE)
        return first, queued, refused

    first, queued, refused = asyncio.run(main())
    assert refused.status == 503
    assert refused.headers[b"retry-after"] == b"7"
    assert (first.status, first.body) == (200, b"done")
    assert (queued.status, queued.body) == (200, b"done")


def test_request_timeout_answers_504_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    gate = Gate()
    closed = threading.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"late"

        def close(self) -> None:
            closed.set()

    def app(environ: Environ, start_response: Any) -> Body:
        gate.wait()
        start_response("200 OK", [])
        return Body()

    bridge = WSGIToASGI(app, request_timeout=TIMEOUT)
    with caplog.at_level(logging.ERROR, logger="asgishift.bridge"):
        server = request(bridge, path="/slow", raw_path=b"/slow")
    assert server.status == 504
    assert "timed out" in caplog.text
    assert "/slow" in caplog.text
    gate.released.set()
    assert closed.wait(DEADLINE)  # the worker still closes the iterable


def test_timeout_stops_applying_once_the_response_started() -> None:
    gate = Gate()

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"first"
        gate.wait()  # released well after request_timeout
        yield b"second"

    async def on_send(message: Message) -> None:
        if message.get("body") == b"first":
            asyncio.get_running_loop().call_later(2 * TIMEOUT, gate.released.set)

    server = run(
        WSGIToASGI(app, request_timeout=TIMEOUT), make_scope(), FakeServer(on_send=on_send)
    )
    assert server.status == 200
    assert server.body == b"firstsecond"
    assert server.complete


def test_timeout_while_client_stalls_the_upload() -> None:
    raised: list[BaseException] = []
    app_done = threading.Event()

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            raised.append(exc)
            raise
        finally:
            app_done.set()
        start_response("200 OK", [])
        return [b"never"]

    # Half a body, then the client goes quiet (FakeServer blocks until disconnect).
    messages = [{"type": "http.request", "body": b"half", "more_body": True}]
    server = run(
        WSGIToASGI(app, request_timeout=TIMEOUT), make_scope(method="POST"), FakeServer(messages)
    )
    assert server.status == 504
    # The 504 may go out before the worker thread has handled the error.
    assert app_done.wait(DEADLINE)
    assert [type(exc) for exc in raised] == [ClientDisconnected]


def test_disconnect_during_streaming_response_stops_iteration() -> None:
    closed = threading.Event()
    pulled = 0

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        nonlocal pulled
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        try:
            while True:  # an endless stream: only a disconnect ends it
                pulled += 1
                yield b"data: tick\n\n"
        finally:
            closed.set()

    bridge = WSGIToASGI(app)
    server = run(bridge, make_scope(), FakeServer(disconnect_after_sends=3))
    assert closed.is_set()
    # 3 messages = start + 2 chunks; a chunk or two may be in flight when it lands.
    assert 2 <= pulled <= 4
    assert _eventually(lambda: bridge.pool.in_flight == 0)
    assert not server.complete


def _eventually(condition: Any) -> bool:
    event = threading.Event()
    for _ in range(1000):
        if condition():
            return True
        event.wait(0.01)
    return bool(condition())


def test_failing_send_frees_worker_and_closes() -> None:
    closed = threading.Event()
    raised: list[BaseException] = []

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        write = start_response("200 OK", [])
        try:
            write(b"one")
            write(b"two")
        except OSError as exc:
            raised.append(exc)
            raise
        finally:
            closed.set()
        yield b""

    async def failing_send(message: Message) -> None:
        raise OSError("connection reset")

    bridge = WSGIToASGI(app)
    run(bridge, make_scope(), FakeServer(on_send=failing_send))
    assert closed.is_set()
    assert len(raised) == 1
    assert isinstance(raised[0], ClientDisconnected)
    assert _eventually(lambda: bridge.pool.in_flight == 0)


def test_cancelled_request_task_releases_waiting_worker() -> None:
    closed = threading.Event()
    raised: list[BaseException] = []
    sending = asyncio.Event

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            yield b"x" * 10
            yield b"y" * 10
        except BaseException as exc:
            raised.append(exc)
            raise
        finally:
            closed.set()

    async def main() -> None:
        started = sending()
        never = sending()

        async def stuck_send(message: Message) -> None:
            started.set()
            await never.wait()  # a send that never completes (a stuck client)

        server = FakeServer(on_send=stuck_send)
        task = asyncio.create_task(WSGIToASGI(app)(make_scope(), server.receive, server.send))
        await asyncio.wait_for(started.wait(), DEADLINE)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(closed.wait, DEADLINE)

    asyncio.run(main())
    assert closed.is_set()
    # Closed while suspended after the first chunk: never asked for the second.
    assert [type(exc) for exc in raised] == [GeneratorExit]


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


def test_each_request_runs_in_fresh_context() -> None:
    seen: list[str] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        seen.append(REQUEST_ID.get())
        REQUEST_ID.set(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    bridge = WSGIToASGI(validator(app), max_workers=1)  # same thread every time

    async def main() -> None:
        for path in ("/a", "/b", "/c"):
            server = FakeServer()
            scope = make_scope(path=path, raw_path=path.encode())
            await asyncio.wait_for(bridge(scope, server.receive, server.send), DEADLINE)
        assert REQUEST_ID.get() == "unset"

    asyncio.run(main())
    assert seen == ["unset", "unset", "unset"]


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_sequential_requests_reuse_one_worker_thread(loop_kind: str) -> None:
    # A request that ends must count its thread as free before the loop hears
    # of it; otherwise the next request finds every thread "busy" and the pool
    # starts another one (on the asyncio loop that happened in most requests).
    threads: set[str] = set()

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        threads.add(threading.current_thread().name)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    bridge = WSGIToASGI(validator(app), max_workers=8)

    async def main() -> None:
        for _ in range(200):
            server = FakeServer()
            await asyncio.wait_for(bridge(make_scope(), server.receive, server.send), DEADLINE)
            assert server.status == 200

    if loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        uvloop.run(main())
    else:
        asyncio.run(main())
    assert bridge.pool.threads == 1
    assert len(threads) == 1


def test_context_of_the_asgi_task_is_visible_to_the_app() -> None:
    seen: list[str] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        seen.append(REQUEST_ID.get())
        start_response("200 OK", [])
        return []

    async def main() -> None:
        REQUEST_ID.set("from-middleware")
        server = FakeServer()
        await asyncio.wait_for(WSGIToASGI(app)(make_scope(), server.receive, server.send), DEADLINE)

    asyncio.run(main())
    assert seen == ["from-middleware"]


def lifespan_messages(*types: str) -> list[dict[str, Any]]:
    return [{"type": t} for t in types]


def test_lifespan_startup_and_shutdown_complete() -> None:
    server = FakeServer(lifespan_messages("lifespan.startup", "lifespan.shutdown"))
    run(WSGIToASGI(gated_app(Gate())), {"type": "lifespan", "asgi": {"version": "3.0"}}, server)
    assert [m["type"] for m in server.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


def test_lifespan_shutdown_drains_running_requests_and_refuses_new() -> None:
    gate = Gate()
    bridge = WSGIToASGI(gated_app(gate))

    async def main() -> tuple[FakeServer, FakeServer, list[str]]:
        order: list[str] = []
        running = FakeServer()
        task = asyncio.create_task(bridge(make_scope(), running.receive, running.send))
        await gate.until_entered()
        life = FakeServer(lifespan_messages("lifespan.startup", "lifespan.shutdown"))
        life_task = asyncio.create_task(bridge({"type": "lifespan"}, life.receive, life.send))
        for _ in range(50):
            await asyncio.sleep(0)
        assert bridge.draining
        assert [m["type"] for m in life.sent] == ["lifespan.startup.complete"]
        late = FakeServer()
        await asyncio.wait_for(bridge(make_scope(), late.receive, late.send), DEADLINE)
        order.append("late refused")
        gate.released.set()
        await asyncio.wait_for(task, DEADLINE)
        await asyncio.wait_for(life_task, DEADLINE)
        order.append(life.sent[-1]["type"])
        return running, late, order

    running, late, order = asyncio.run(main())
    assert running.body == b"done"
    assert late.status == 503
    assert order == ["late refused", "lifespan.shutdown.complete"]


def test_blocking_shutdown_waits_for_requests() -> None:
    gate = Gate()
    bridge = WSGIToASGI(gated_app(gate))
    result: list[bool] = []

    async def main() -> None:
        server = FakeServer()
        task = asyncio.create_task(bridge(make_scope(), server.receive, server.send))
        await gate.until_entered()
        assert await asyncio.to_thread(bridge.shutdown, 0.01) is False
        gate.released.set()
        result.append(await asyncio.to_thread(bridge.shutdown, DEADLINE))
        await asyncio.wait_for(task, DEADLINE)

    asyncio.run(main())
    assert result == [True]
    assert bridge.draining


def test_websocket_refused_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    scope = {"type": "websocket", "path": "/ws", "headers": []}
    server = FakeServer([{"type": "websocket.connect"}])
    with caplog.at_level(logging.DEBUG, logger="asgishift.bridge"):
        run(WSGIToASGI(gated_app(Gate())), scope, server)
    assert server.sent == [{"type": "websocket.close", "code": 1000}]
    assert any(r.levelno == logging.DEBUG and "websocket" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        pytest.param({"max_workers": 0}, "max_workers", id="max-workers"),
        pytest.param({"max_queue": -1}, "max_queue", id="max-queue"),
        pytest.param({"max_body_size": -1}, "max_body_size", id="max-body-size"),
        pytest.param({"request_timeout": 0}, "request_timeout", id="timeout"),
        pytest.param({"buffer_size": -1}, "buffer_size", id="buffer-size"),
        pytest.param({"retry_after": -1}, "retry_after", id="retry-after"),
    ],
)
def test_invalid_arguments_refused(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        WSGIToASGI(gated_app(Gate()), **kwargs)


def test_timeout_arriving_while_an_item_is_pending_is_not_lost() -> None:
    from asgishift.bridge import BridgeOptions
    from asgishift.bridge._inbox import Inbox
    from asgishift.bridge._pool import WorkerPool
    from asgishift.bridge._request import _SEND, _TIMEOUT, Request

    async def main() -> tuple[Any, Any]:
        server = FakeServer()
        scope = make_scope()
        inbox = Inbox(asyncio.get_running_loop())
        req = Request(
            gated_app(Gate()),
            BridgeOptions(),
            WorkerPool(1, 0),
            inbox,
            scope,
            {"REQUEST_METHOD": "GET"},
            server.receive,
            server.send,
        )
        req.wake((_SEND, ()))  # the worker's item, not yet taken by serve()
        req.wake((_TIMEOUT,))  # the timer fires in the same loop iteration
        first = await req.waiter
        req.waiter = asyncio.get_running_loop().create_future()  # what serve() does next
        second = await asyncio.wait_for(req.waiter, DEADLINE)
        return first, second

    first, second = asyncio.run(main())
    assert first[0] == "send"
    assert second == ("timeout",)


def test_request_timed_out_in_queue_never_runs_the_app() -> None:
    gate = Gate()
    calls: list[str] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/first":
            gate.wait()
        start_response("200 OK", [])
        return [b"ok"]

    bridge = WSGIToASGI(app, max_workers=1, max_queue=1, request_timeout=TIMEOUT)

    async def main() -> tuple[FakeServer, FakeServer]:
        first, queued = FakeServer(), FakeServer()
        scope = make_scope(path="/first", raw_path=b"/first")
        t1 = asyncio.create_task(bridge(scope, first.receive, first.send))
        await gate.until_entered()
        scope = make_scope(path="/queued", raw_path=b"/queued")
        await asyncio.wait_for(bridge(scope, queued.receive, queued.send), DEADLINE)
        await asyncio.wait_for(t1, DEADLINE)  # times out too: 504
        gate.released.set()
        assert await asyncio.to_thread(_eventually, lambda: bridge.pool.in_flight == 0)
        return first, queued

    first, queued = asyncio.run(main())
    assert (first.status, queued.status) == (504, 504)
    assert calls == ["/first"]


def test_timeout_fires_while_client_stalls_a_send(caplog: pytest.LogCaptureFixture) -> None:
    closed = threading.Event()
    raised: list[BaseException] = []

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        write = start_response("200 OK", [])
        try:
            write(b"first")  # the client never reads it
        except OSError as exc:
            raised.append(exc)
            raise
        finally:
            closed.set()
        yield b""

    async def stalled_send(message: Message) -> None:
        await asyncio.Event().wait()  # never returns: a client that stopped reading

    with caplog.at_level(logging.ERROR, logger="asgishift.bridge"):
        run(
            WSGIToASGI(app, request_timeout=TIMEOUT), make_scope(), FakeServer(on_send=stalled_send)
        )
    assert closed.wait(DEADLINE)
    assert [type(exc) for exc in raised] == [ClientDisconnected]
    assert "timed out" in caplog.text


def test_client_leaving_while_queued_never_runs_the_app() -> None:
    gate = Gate()
    calls: list[str] = []

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/first":
            gate.wait()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    bridge = WSGIToASGI(validator(app), max_workers=1, max_queue=1)

    async def main() -> tuple[FakeServer, FakeServer]:
        first, queued = FakeServer(), FakeServer()
        t1 = asyncio.create_task(
            bridge(make_scope(path="/first", raw_path=b"/first"), first.receive, first.send)
        )
        await gate.until_entered()
        t2 = asyncio.create_task(
            bridge(make_scope(path="/queued", raw_path=b"/queued"), queued.receive, queued.send)
        )
        for _ in range(1000):
            if queued.receive_calls >= 2:  # the bridge is watching for a disconnect
                break
            await asyncio.sleep(0)
        queued.disconnect()
        for _ in range(1000):
            await asyncio.sleep(0)  # let the watcher see it
        gate.released.set()
        await asyncio.wait_for(asyncio.gather(t1, t2), DEADLINE)
        return first, queued

    first, queued = asyncio.run(main())
    assert first.body == b"ok"
    assert queued.sent == []
    assert calls == ["/first"]


def test_server_refusing_a_message_is_logged_and_stops_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = threading.Event()

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            yield b"abc"
            yield b"refused"
            yield b"never pulled"
        finally:
            closed.set()

    async def strict_send(message: Message) -> None:
        if message.get("body") == b"refused":
            raise RuntimeError("the server refuses this message")

    with caplog.at_level(logging.ERROR, logger="asgishift.bridge"):
        server = run(WSGIToASGI(app), make_scope(), FakeServer(on_send=strict_send))
    assert closed.is_set()
    assert server.body == b"abc"
    assert "the server refuses this message" in caplog.text


def test_lifespan_shutdown_gives_up_after_shutdown_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = Gate()
    bridge = WSGIToASGI(gated_app(gate), shutdown_timeout=0.05)

    async def main() -> FakeServer:
        running = FakeServer()
        # Left running: asyncio.run() cancels it and closes the loop.
        task = asyncio.create_task(bridge(make_scope(), running.receive, running.send))
        await gate.until_entered()
        life = FakeServer(lifespan_messages("lifespan.startup", "lifespan.shutdown"))
        await asyncio.wait_for(bridge({"type": "lifespan"}, life.receive, life.send), DEADLINE)
        assert not task.done()
        return life

    with caplog.at_level(logging.WARNING, logger="asgishift.bridge"):
        life = asyncio.run(main())
    assert life.sent[-1] == {"type": "lifespan.shutdown.complete"}
    assert "still running" in caplog.text
    # The app finishes after the loop closed; the drain's idle callback then
    # fails against the closed loop, and no worker thread may die of it.
    gate.released.set()
    assert _eventually(lambda: bridge.pool.in_flight == 0)
