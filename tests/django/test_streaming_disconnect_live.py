"""The bounded handler stops a streaming response, or an async view, whose client left,
on every ASGI server.

Served app: ``tests/live_apps/django_stream_app.py`` (two threads, endless streams,
an async-only middleware that can wait for ever before or after the view).
"""

from __future__ import annotations

import functools

import httpx
import pytest

from live import ASGI_SERVER_PARAMS, live_server, wait_for

APP = "django_stream_app:application"
#: One stream more than the app's handler has threads.
STREAMS = 3


def read_lines_and_leave(url: str, lines: int) -> list[str]:
    """Open ``url`` on a connection of its own, read ``lines`` lines, then disconnect."""
    seen: list[str] = []
    with httpx.Client(timeout=10) as client, client.stream("GET", url) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            seen.append(line)
            if len(seen) == lines:
                break
    return seen


@pytest.mark.parametrize("kind", ["async", "sync"])
@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_stream_is_closed_and_its_thread_freed_when_the_client_leaves(
    server: str, kind: str
) -> None:
    with live_server(server, APP) as live, httpx.Client(base_url=live.url, timeout=10) as client:

        def closed(count: int) -> bool:
            events = client.get("/status/").json()["events"]
            return bool(events.get(f"{kind} closed", 0) >= count)

        threads_before = client.get("/status/").json()["threads"]
        for n in range(1, STREAMS + 1):
            lines = read_lines_and_leave(f"{live.url}/ticks/{kind}/", 3)
            assert lines == ["tick 0", "tick 1", "tick 2"]
            wait_for(
                functools.partial(closed, n),
                10,
                f"{n} {kind} generator(s) closed after their clients left",
            )
        status = client.get("/status/").json()
    events = {key: n for key, n in status["events"].items() if not key.startswith("request ")}
    assert events == {f"{kind} started": STREAMS, f"{kind} closed": STREAMS}
    # The /status/ view started one of the handler's two threads; no more than the
    # other one may have started since, and none is left streaming.
    assert status["threads"] <= threads_before + 1, (threads_before, status)


def _give_up_each_time(url: str, path: str, *cancelled: str) -> dict[str, int]:
    """Request ``path`` :data:`STREAMS` times, each time timing out and closing the
    connection, and wait after each for every one of the app's event counts
    ``cancelled`` to reach it (a cancellation reaches the view and the middleware
    around it in different steps of the loop, so one may be counted a moment later).

    :return: the app's event counts at the end (``/status/``).
    :raise AssertionError: when a cancellation is not counted within 10 s.
    """
    with httpx.Client(base_url=url, timeout=10) as client:

        def events() -> dict[str, int]:
            counts: dict[str, int] = client.get("/status/").json()["events"]
            return counts

        for n in range(1, STREAMS + 1):
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=0.3)) as poller,
                pytest.raises(httpx.ReadTimeout),
            ):
                poller.get(f"{url}{path}")
            wait_for(
                lambda n=n: all(events().get(c, 0) >= n for c in cancelled),  # type: ignore[misc]
                10,
                f"{n} request(s) to {path} cancelled after their clients left ({cancelled!r})",
            )
        return events()


@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_long_poll_view_is_cancelled_when_the_client_gives_up(server: str) -> None:
    """A client times out on an ``async def`` view that waits for ever and closes its
    connection: the view is cancelled and its thread freed, each time (one more time
    than the app has threads). The cancellation passes out through the async
    middleware around the view."""
    with live_server(server, APP) as live:
        events = _give_up_each_time(
            live.url, "/poll/", "poll cancelled", "middleware saw CancelledError"
        )
        counts = {key: n for key, n in events.items() if not key.startswith("request ")}
        assert counts == {
            "poll started": STREAMS,
            "poll cancelled": STREAMS,
            "middleware saw CancelledError": STREAMS,
        }


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("server", ASGI_SERVER_PARAMS)
def test_async_middleware_is_cancelled_when_the_client_gives_up(server: str, where: str) -> None:
    """An async middleware waits for ever ``before`` calling the view or ``after`` it
    answered; the client times out and closes its connection: the middleware gets
    ``CancelledError`` where it waits, ``request_finished`` is sent and the thread is
    freed, each time (one more time than the app has threads). Before the fix only
    an ``async def`` view was cancelled: the middleware waited on, holding a thread."""
    path = f"/poll/?linger={where}" if where == "before" else f"/status/?linger={where}"
    with live_server(server, APP) as live, httpx.Client(base_url=live.url, timeout=10) as client:
        counts = _give_up_each_time(live.url, path, f"linger {where} cancelled")

        def unfinished() -> int:
            events: dict[str, int] = client.get("/status/").json()["events"]
            return events["request started"] - events["request finished"]

        # The middleware counts its CancelledError on the loop; the pool thread that
        # ran the chain sends request_finished a moment later. Every request but the
        # /status/ call answering must be finished, the cancelled ones too.
        wait_for(lambda: unfinished() == 1, 10, f"the {STREAMS} cancelled requests to be finished")
    assert counts[f"linger {where} started"] == STREAMS
    # Neither the view (for "before") nor anything after the wait ran.
    assert "poll started" not in counts
    assert "middleware saw CancelledError" not in counts
