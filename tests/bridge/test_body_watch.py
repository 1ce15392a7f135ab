"""``BodyWatch``: reading an unfinished request body ahead of the app (in-process)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.validate import validator

import pytest
from bridge_harness import DEADLINE, FakeServer, body_messages, make_scope, run

from asgishift._types import Message
from asgishift.bridge import WSGIToASGI
from asgishift.bridge._body_watch import BodyWatch, WatchMode
from asgishift.bridge._errors import RequestBodyTooLarge

Environ = dict[str, Any]


def _unfinished(*chunks: bytes) -> list[Message]:
    """Body messages that all say more_body: the client never ends its body."""
    return [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]


def test_messages_come_out_in_order_and_the_disconnect_stays() -> None:
    async def main() -> None:
        server = FakeServer(body_messages(b"a", b"bb", b"ccc"))
        left = asyncio.Event()
        watch = BodyWatch(server.receive, 1 << 20, left.set)
        watch.start()
        got = [await watch.receive() for _ in range(3)]
        server.disconnect()
        await asyncio.wait_for(left.wait(), DEADLINE)
        assert [m["body"] for m in got] == [b"a", b"bb", b"ccc"]
        assert (await watch.receive())["type"] == "http.disconnect"
        assert (await watch.receive())["type"] == "http.disconnect"

    asyncio.run(main())


def test_reads_at_most_limit_bytes_ahead() -> None:
    async def main() -> None:
        server = FakeServer(_unfinished(*[b"x" * 10] * 8))
        watch = BodyWatch(server.receive, 25, lambda: None)
        watch.start()
        for _ in range(20):
            await asyncio.sleep(0)
        assert server.receive_calls == 3  # 30 bytes held >= 25: it waits for the app
        assert (await watch.receive())["body"] == b"x" * 10
        for _ in range(20):
            await asyncio.sleep(0)
        assert server.receive_calls == 4
        await watch.stop()

    asyncio.run(main())


def test_after_stop_receive_reads_the_server_itself() -> None:
    async def main() -> None:
        server = FakeServer(_unfinished(b"1", b"2", b"3"))
        watch = BodyWatch(server.receive, 1, lambda: None)
        watch.start()
        for _ in range(20):
            await asyncio.sleep(0)
        await watch.stop()
        assert server.receive_calls == 1
        assert (await watch.receive())["body"] == b"1"  # held
        assert (await watch.receive())["body"] == b"2"  # read in this task
        assert server.receive_calls == 2

    asyncio.run(main())


def test_stop_before_the_task_ran_does_not_hang_receive() -> None:
    async def main() -> None:
        server = FakeServer(_unfinished(b"1"))
        watch = BodyWatch(server.receive, 10, lambda: None)
        watch.start()
        await watch.stop()
        assert (await asyncio.wait_for(watch.receive(), DEADLINE))["body"] == b"1"

    asyncio.run(main())


def test_stream_with_an_unfinished_body_stops_when_the_client_leaves() -> None:
    # The body never ends and the app never reads it; the response streams
    # for ever. Only the disconnect may end it (it used to go unseen).
    closed = threading.Event()

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        try:
            while True:
                yield b"data: tick\n\n"
        finally:
            closed.set()

    bridge = WSGIToASGI(app)
    server = FakeServer(_unfinished(b"a" * 10, b"b" * 10), disconnect_after_sends=3)
    run(bridge, make_scope(method="POST"), server)
    assert closed.is_set()
    assert not server.complete


def test_app_reading_while_streaming_gets_the_whole_body_in_order() -> None:
    chunks = [bytes([65 + i]) * 50_000 for i in range(6)]

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        stream = environ["wsgi.input"]
        yield b"start;"  # the response streams before the body is read
        while block := stream.read(30_000):
            yield block

    bridge = WSGIToASGI(app, drain_body_size=70_000)
    server = FakeServer(body_messages(*chunks))
    run(bridge, make_scope(method="POST"), server)
    assert server.body == b"start;" + b"".join(chunks)
    assert server.complete


def test_small_unread_rest_is_drained_and_keeps_the_connection() -> None:
    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"one"
        yield b"two"

    bridge = WSGIToASGI(app)
    server = FakeServer(body_messages(b"a" * 70_000, b"b" * 1000, b"c" * 1000))
    run(bridge, make_scope(method="POST", headers=[(b"content-length", b"72000")]), server)
    assert server.body == b"onetwo"
    assert server.complete
    assert b"connection" not in server.headers
    assert server.requests == []  # all of the body was read


def test_app_that_ignores_a_body_past_the_limit_still_sees_the_client_leave() -> None:
    # The watch is full (25 bytes held, limit 25) and the app streams without
    # reading: it used to stop reading and wait for room that never came, so
    # the disconnect went unseen and the endless response ran until the deadline.
    closed = threading.Event()

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        try:
            while True:
                yield b"data: tick\n\n"
        finally:
            closed.set()

    bridge = WSGIToASGI(app, drain_body_size=25)
    # The client keeps uploading: 50 more body messages come before the disconnect.
    server = FakeServer(_unfinished(*[b"x" * 10] * 50), disconnect_after_sends=5)
    run(bridge, make_scope(method="POST"), server)
    assert closed.is_set()
    assert not server.complete


def test_streamed_drops_past_the_limit_only_for_an_app_that_read_nothing() -> None:
    async def main() -> None:
        server = FakeServer(_unfinished(*[b"x" * 10] * 8))
        watch = BodyWatch(server.receive, 25, lambda: None)
        watch.start()
        for _ in range(20):
            await asyncio.sleep(0)
        assert (await watch.receive())["body"] == b"x" * 10  # the app reads once
        for _ in range(20):
            await asyncio.sleep(0)
        watch.streamed()
        for _ in range(20):
            await asyncio.sleep(0)
        assert watch.mode is WatchMode.HOLDING
        assert server.receive_calls == 4  # still bounded: 30 bytes held
        assert watch.dropped == 0
        await watch.stop()

    asyncio.run(main())


def test_a_read_after_the_dropped_bytes_fails_clearly() -> None:
    async def main() -> None:
        left = asyncio.Event()
        server = FakeServer(_unfinished(*[bytes([65 + i]) * 10 for i in range(8)]))
        watch = BodyWatch(server.receive, 25, left.set)
        watch.start()
        for _ in range(20):
            await asyncio.sleep(0)
        watch.streamed()  # the app sent a block having read nothing
        assert watch.mode is WatchMode.DROPPING
        for _ in range(20):
            await asyncio.sleep(0)
        assert server.receive_calls == 9  # read on to the end of the script
        assert watch.dropped == 50
        # The bytes held come out in order, then the gap fails, every time.
        assert [(await watch.receive())["body"] for _ in range(3)] == [
            b"A" * 10,
            b"B" * 10,
            b"C" * 10,
        ]
        for _ in range(2):
            with pytest.raises(RequestBodyTooLarge, match="50 bytes of the request body"):
                await watch.receive()
        server.disconnect()
        await asyncio.wait_for(left.wait(), DEADLINE)

    asyncio.run(main())


def test_after_stop_the_dropped_bytes_read_as_an_empty_message() -> None:
    async def main() -> None:
        server = FakeServer(body_messages(*[b"x" * 10] * 6))  # the body ends
        watch = BodyWatch(server.receive, 15, lambda: None)
        watch.start()
        for _ in range(20):
            await asyncio.sleep(0)
        watch.streamed()
        for _ in range(20):
            await asyncio.sleep(0)
        await watch.stop()
        # The final drain sees the held bytes, then the end of the body.
        assert (await watch.receive())["body"] == b"x" * 10
        assert (await watch.receive())["body"] == b"x" * 10
        last = await watch.receive()
        assert last == {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(main())


def test_app_that_reads_after_streaming_past_the_limit_gets_an_oserror() -> None:
    seen: list[BaseException] = []

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for _ in range(5):
            yield b"tick;"
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            seen.append(exc)
        yield b"end"

    bridge = WSGIToASGI(app, drain_body_size=25)
    server = FakeServer(_unfinished(*[b"x" * 10] * 50))
    run(bridge, make_scope(method="POST"), server)
    assert len(seen) == 1
    assert isinstance(seen[0], RequestBodyTooLarge)
    assert server.body.endswith(b"end")


def test_app_reading_through_a_wrapped_input_while_streaming_loses_nothing() -> None:
    # wsgiref's validator (any middleware) replaces environ["wsgi.input"]: the
    # watch must still see the app read from the bridge's stream, even when the
    # reads come from the first message, already buffered, and fetch nothing.
    chunks = [bytes([65 + i]) * 50_000 for i in range(6)]

    def app(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        stream = environ["wsgi.input"]
        yield b"start;"
        while block := stream.read(20_000):
            yield block

    bridge = WSGIToASGI(validator(app), drain_body_size=70_000)
    server = FakeServer(body_messages(*chunks))
    run(bridge, make_scope(method="POST"), server)
    assert server.body == b"start;" + b"".join(chunks)
    assert server.complete
