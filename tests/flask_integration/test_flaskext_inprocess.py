"""The Flask extension in process: ``ext.test_client()`` (httpx over ASGI with
lifespan), Flask's own ``test_client``, configuration, hooks and WebSockets.

No socket is opened here; ``test_flaskext_live.py`` runs the same features on
real servers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from flask import Flask, Response, abort, g, jsonify, request, session, url_for
from flaskext_helpers import ASYNC_STREAM_WITH_CONTEXT

from asgishift.bridge import BridgeOptions
from asgishift.flask_integration import (
    ASGI,
    ASGIState,
    AsyncTestClient,
    WebSocket,
    WebSocketDisconnect,
    WebSocketRejected,
)


def make_app(**config: Any) -> tuple[Flask, ASGI]:
    app = Flask("flaskext_inprocess")
    app.secret_key = "inprocess"
    app.config.update(config)
    return app, ASGI(app)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- configuration and extension state ---------------------------------------
def test_config_keys_map_onto_bridge_options() -> None:
    app, ext = make_app(ASGISHIFT_MAX_WORKERS=3, ASGISHIFT_MAX_BODY_SIZE=10)
    state = app.extensions["asgishift"]
    assert isinstance(state, ASGIState)
    assert ext.asgi_app.options.max_workers == 3
    assert ext.asgi_app.options.max_body_size == 10
    # Defaults are written into the config (Flask's extension guide).
    assert app.config["ASGISHIFT_MAX_QUEUE"] == BridgeOptions().max_queue


def test_every_bridge_option_has_a_config_key() -> None:
    import dataclasses

    from asgishift.flask_integration._config import config_keys

    keys = config_keys()
    assert sorted(keys.values()) == sorted(f.name for f in dataclasses.fields(BridgeOptions))
    assert keys["ASGISHIFT_REQUEST_TIMEOUT"] == "request_timeout"


def test_launcher_options_win_over_config_only_when_changed() -> None:
    app, _ = make_app(ASGISHIFT_MAX_WORKERS=3, ASGISHIFT_MAX_QUEUE=7)
    state: ASGIState = app.extensions["asgishift"]
    served = state.asgi_app_for(BridgeOptions(max_workers=9))
    assert served.options.max_workers == 9  # changed by the launcher
    assert served.options.max_queue == 7  # left at default by the launcher


def test_bad_config_value_fails_init_app_naming_the_key() -> None:
    app = Flask("bad")
    app.config["ASGISHIFT_MAX_QUEUE"] = 5  # a good value beside it is not blamed
    app.config["ASGISHIFT_MAX_WORKERS"] = 0
    with pytest.raises(ValueError, match=r"^invalid ASGISHIFT_MAX_WORKERS = 0 in the Flask config"):
        ASGI(app)


def test_bad_config_value_reached_through_a_launcher_names_the_key() -> None:
    app, _ = make_app()
    app.config["ASGISHIFT_REQUEST_TIMEOUT"] = -1
    state: ASGIState = app.extensions["asgishift"]
    with pytest.raises(ValueError, match=r"^invalid ASGISHIFT_REQUEST_TIMEOUT = -1 in the Flask"):
        state.asgi_app_for(BridgeOptions(max_workers=9))


def test_init_app_twice_is_refused() -> None:
    app, ext = make_app()
    with pytest.raises(RuntimeError, match="already installed"):
        ext.init_app(app)


def test_app_with_other_wsgi_middleware_installs_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Middleware other than ProxyFix is an object the loop's requests cannot go
    # through: named in a warning, whether or not a ProxyFix wraps it.
    from werkzeug.middleware.proxy_fix import ProxyFix
    from werkzeug.middleware.shared_data import SharedDataMiddleware

    app = Flask("shared")
    app.wsgi_app = SharedDataMiddleware(app.wsgi_app, {})  # type: ignore[method-assign]
    ext = ASGI(app)
    # Wrapped after init_app, as a factory may do: seen when served.
    later = Flask("shared-later")
    ASGI(later)
    later.wsgi_app = ProxyFix(SharedDataMiddleware(later.wsgi_app, {}))  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="asgishift.flask"):
        ext.state().asgi_app_for(BridgeOptions())
        later.extensions["asgishift"].asgi_app_for(BridgeOptions())
    warned = [r.getMessage() for r in caplog.records if "WSGI middleware" in r.getMessage()]
    assert len(warned) == 2
    assert "'shared-later'" in warned[1]
    assert "(SharedDataMiddleware)" in warned[1]


def test_proxyfix_applies_to_sync_and_async_views_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # app.wsgi_app = ProxyFix(app.wsgi_app): the usual deployment line.
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = Flask("proxied")
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_host=1)  # type: ignore[method-assign]
    ext = ASGI(app)

    @app.get("/sync")
    def sync_addr() -> Any:
        return jsonify(addr=request.remote_addr, host=request.host)

    @app.get("/async")
    async def async_addr() -> Any:
        return jsonify(addr=request.remote_addr, host=request.host)

    async def scenario() -> list[Any]:
        forwarded = {"x-forwarded-for": "203.0.113.9", "x-forwarded-host": "shop.example"}
        async with ext.test_client() as client:
            return [
                (await client.get(path, headers=forwarded)).json() for path in ("/sync", "/async")
            ]

    with caplog.at_level("WARNING", logger="asgishift.flask"):
        answers = run(scenario())
    assert answers == [{"addr": "203.0.113.9", "host": "shop.example"}] * 2
    assert not [r for r in caplog.records if "WSGI middleware" in r.getMessage()]


def test_forwarded_host_decides_the_route_behind_proxyfix() -> None:
    """A sync answer is remembered per X-Forwarded-Host when ProxyFix trusts it:
    one host's sync view no longer sends the other host's async view to a thread."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = Flask("hosts", host_matching=True, static_host="static.example")
    app.wsgi_app = ProxyFix(app.wsgi_app, x_host=1)  # type: ignore[method-assign]
    ext = ASGI(app)

    @app.before_request
    def where() -> None:
        # A plain def hook runs on the thread serving the request: a bridge
        # worker for a sync view, the loop's for an async one.
        g.thread = threading.current_thread().name

    @app.get("/", host="www.example")
    def www() -> str:
        return str(g.thread)

    @app.get("/", host="api.example")
    async def api() -> str:
        return str(g.thread)

    async def scenario() -> list[str]:
        async with ext.test_client() as client:
            return [
                (await client.get("/", headers={"x-forwarded-host": host})).text
                for host in ("www.example", "api.example", "www.example")
            ]

    www_thread, api_thread, www_again = run(scenario())
    assert www_thread.startswith("asgishift-bridge")
    assert www_again.startswith("asgishift-bridge")
    assert api_thread == threading.current_thread().name


def test_factory_form_without_an_app_says_to_pass_one() -> None:
    # ASGI() in the factory form knows no app outside an app context: the
    # error names the fix instead of Flask's "Working outside of application context".
    ext = ASGI()
    ext.init_app(Flask("factory"))
    with pytest.raises(RuntimeError, match=r"test_client\(app\)"):
        ext.test_client()


def test_one_extension_serves_several_apps() -> None:
    ext = ASGI()
    started: list[str] = []

    @ext.before_serving
    def note() -> None:
        from flask import current_app

        started.append(current_app.name)

    first, second = Flask("first"), Flask("second")
    ext.init_app(first)
    ext.init_app(second)
    for app in (first, second):

        @app.get("/name")
        async def name() -> str:
            from flask import current_app

            return current_app.name

    async def both() -> list[str]:
        names = []
        for app in (first, second):
            async with ext.test_client(app) as client:
                names.append((await client.get("/name")).text)
        return names

    assert run(both()) == ["first", "second"]
    assert started == ["first", "second"]
    assert first.extensions["asgishift"] is not second.extensions["asgishift"]


def test_registrations_inside_a_factory_apply_to_that_app_only() -> None:
    from flask import current_app

    ext = ASGI()
    calls: list[tuple[str, str]] = []

    @ext.before_serving
    def shared_hook() -> None:
        calls.append((current_app.name, "module"))

    def create_app(name: str) -> Flask:
        app = Flask(name)
        ext.init_app(app)

        @ext.before_serving
        async def own_hook() -> None:
            calls.append((current_app.name, name))

        @ext.websocket("/ws")
        async def ws(conn: WebSocket) -> None:
            await conn.send(current_app.name)

        return app

    async def serve(app: Flask) -> str | bytes:
        async with ext.test_client(app) as client, client.websocket("/ws") as conn:
            return await conn.receive()

    first = create_app("first")
    assert run(serve(first)) == "first"
    # A second app after the first served: nothing is added to the first one.
    second = create_app("second")
    assert run(serve(second)) == "second"
    assert calls == [
        ("first", "module"),
        ("first", "first"),
        ("second", "module"),
        ("second", "second"),
    ]


def test_the_extension_object_is_itself_an_asgi3_app() -> None:
    import httpx
    from uvicorn.config import Config

    app, ext = make_app()

    @app.get("/x")
    async def x() -> str:
        return "via ext"

    config = Config(app=ext)
    config.load()
    assert config.interface == "asgi3"

    async def scenario() -> str:
        transport = httpx.ASGITransport(app=ext)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return (await client.get("/x")).text

    assert run(scenario()) == "via ext"


# -- async views, hooks and errors through ext.test_client ------------------
def test_async_pipeline_hooks_handlers_and_session() -> None:
    app, ext = make_app()
    calls: list[str] = []

    @app.before_request
    async def before() -> None:
        g.user = "ada"
        calls.append("before")

    @app.after_request
    async def after(response: Response) -> Response:
        response.headers["X-After"] = "async"
        calls.append("after")
        return response

    @app.teardown_request
    def teardown(exc: BaseException | None) -> None:
        calls.append("teardown")

    @app.errorhandler(KeyError)
    async def missing(exc: KeyError) -> tuple[str, int]:
        return f"missing {exc.args[0]}", 418

    @app.get("/hello/<name>")
    async def hello(name: str) -> Any:
        session["seen"] = name
        return jsonify(name=name, user=g.user, thread=threading.current_thread().name)

    @app.get("/seen")
    async def seen() -> Any:
        return jsonify(seen=session.get("seen"))

    @app.get("/key")
    async def key() -> Any:
        raise KeyError("thing")

    @app.get("/abort")
    async def aborting() -> Any:
        abort(404)

    async def scenario() -> None:
        async with ext.test_client() as client:
            response = await client.get("/hello/bob")
            assert response.status_code == 200
            assert response.headers["X-After"] == "async"
            assert response.json()["user"] == "ada"
            assert response.json()["thread"] == threading.current_thread().name
            assert (await client.get("/seen")).json() == {"seen": "bob"}
            handled = await client.get("/key")
            assert (handled.status_code, handled.text) == (418, "missing thing")
            assert (await client.get("/abort")).status_code == 404
            head = await client.head("/hello/bob")
            assert head.status_code == 200
            assert head.content == b""

    run(scenario())
    assert calls[:3] == ["before", "after", "teardown"]


def test_unhandled_error_is_500_with_log(caplog: pytest.LogCaptureFixture) -> None:
    app, ext = make_app()

    @app.get("/bad")
    async def bad() -> Any:
        raise ZeroDivisionError("inprocess failure")

    async def scenario() -> int:
        async with ext.test_client() as client:
            return (await client.get("/bad")).status_code

    assert run(scenario()) == 500
    assert any("inprocess failure" in str(r.exc_info) for r in caplog.records if r.exc_info)


def test_async_body_limit_is_413() -> None:
    app, ext = make_app(ASGISHIFT_MAX_BODY_SIZE=8)

    @app.post("/up")
    async def upload() -> Any:
        return str(len(request.get_data()))

    async def scenario() -> tuple[int, str, int]:
        async with ext.test_client() as client:
            small = await client.post("/up", content=b"12345678")
            big = await client.post("/up", content=b"123456789")
            return small.status_code, small.text, big.status_code

    assert run(scenario()) == (200, "8", 413)


def test_async_view_stops_reading_past_flask_max_content_length() -> None:
    # Flask's own upload limit: an async view gets Flask's 413 (through the
    # app's error handler, as under a WSGI server) without the extension
    # buffering the whole oversized body first.
    app, ext = make_app(MAX_CONTENT_LENGTH=1000)

    @app.post("/up")
    async def upload() -> Any:
        return str(len(request.get_data()))

    @app.post("/ignore")
    async def ignore() -> str:
        return "not read"

    @app.errorhandler(413)
    def too_large(e: Exception) -> tuple[str, int]:
        return "custom 413", 413

    async def post(path: str, chunks: int, declared: bool) -> tuple[int, str, int]:
        pulled = 0

        async def receive() -> dict[str, Any]:
            nonlocal pulled
            pulled += 1
            if pulled > chunks:
                await asyncio.Event().wait()  # the client waits for the answer
            return {"type": "http.request", "body": b"x" * 400, "more_body": pulled < chunks}

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        headers = [(b"host", b"localhost")]
        if declared:
            headers.append((b"content-length", str(400 * chunks).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("localhost", 80),
        }
        await asyncio.wait_for(ext.asgi_app(scope, receive, send), 10)
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return sent[0]["status"], body.decode(), pulled

    async def scenario() -> list[tuple[int, str, int]]:
        return [
            await post("/up", 2, declared=True),
            await post("/up", 1000, declared=False),
            await post("/up", 1000, declared=True),
            await post("/ignore", 1000, declared=True),
        ]

    small, chunked, declared, ignored = run(scenario())
    assert small == (200, "800", 2)
    assert chunked[:2] == (413, "custom 413")
    assert chunked[2] <= 3  # stopped just past 1000 bytes, not 1000 chunks
    assert declared == (413, "custom 413", 0)
    assert ignored == (200, "not read", 0)


def test_async_view_past_request_timeout_is_504_and_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, ext = make_app(ASGISHIFT_REQUEST_TIMEOUT=0.05)
    outcome: list[str] = []

    @app.get("/slow")
    async def slow() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return "never"

    @app.get("/quick")
    async def quick() -> str:
        return "quick"

    async def scenario() -> tuple[int, int]:
        async with ext.test_client() as client:
            slow_status = (await client.get("/slow")).status_code
            return slow_status, (await client.get("/quick")).status_code

    assert run(scenario()) == (504, 200)
    assert outcome == ["cancelled"]
    assert "ASGISHIFT_REQUEST_TIMEOUT" in caplog.text


def test_sync_answers_are_remembered_until_a_view_is_added() -> None:
    from asgishift.flask_integration._routes import route_key
    from asgishift.flask_integration._wire import build_environ, new_base_environ

    app, _ = make_app()

    @app.get("/first")
    async def first() -> str:
        return "first"

    routes = app.extensions["asgishift"].routes
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/late",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
    }
    key = route_key(scope)
    assert routes.any_async
    assert routes.async_request(build_environ(scope, new_base_environ()), key) is None
    assert routes.known_sync(key)

    @app.get("/late")
    async def late() -> str:
        return "late"

    # A new view makes the table look again and forget what it remembered.
    assert routes.any_async
    assert not routes.known_sync(key)
    assert routes.async_request(build_environ(scope, new_base_environ()), key) is not None


def test_async_hook_on_sync_route_runs_on_the_serving_loop() -> None:
    app, ext = make_app()
    loops: list[object] = []

    @app.before_request
    async def before() -> None:
        loops.append(asyncio.get_running_loop())

    @app.get("/sync")
    def sync_view() -> str:
        return threading.current_thread().name

    async def scenario() -> tuple[str, object]:
        async with ext.test_client() as client:
            thread = (await client.get("/sync")).text
            return thread, asyncio.get_running_loop()

    thread, loop = run(scenario())
    assert thread.startswith("asgishift-bridge")
    assert loops == [loop]


def test_async_generator_response_streams_in_order() -> None:
    app, ext = make_app()

    @app.get("/events")
    async def events() -> Response:
        async def gen() -> AsyncIterator[str]:
            for i in range(3):
                await asyncio.sleep(0)
                yield f"data: {i}\n\n"

        return Response(gen(), mimetype="text/event-stream")

    async def scenario() -> str:
        async with ext.test_client() as client:
            return (await client.get("/events")).text

    assert run(scenario()) == "data: 0\n\ndata: 1\n\ndata: 2\n\n"


def test_stream_with_context_over_an_async_generator() -> None:
    from flask import stream_with_context

    app, ext = make_app()

    @app.get("/ctx")
    async def ctx_stream() -> Response:
        async def gen() -> AsyncIterator[str]:
            for i in range(2):
                await asyncio.sleep(0)
                # The request context is still pushed while the stream runs.
                yield f"{request.args['name']}{i};"

        return Response(stream_with_context(gen()), mimetype="text/plain")

    async def scenario() -> str:
        async with ext.test_client() as client:
            return (await client.get("/ctx", params={"name": "n"})).text

    assert run(scenario()) == "n0;n1;"


@pytest.mark.skipif(
    not ASYNC_STREAM_WITH_CONTEXT,
    reason="Flask 3.0's stream_with_context fails in async views (flaskext_helpers)",
)
def test_stream_with_context_over_a_sync_generator_read_in_threads() -> None:
    from flask import stream_with_context

    app, ext = make_app()
    loop_thread: list[threading.Thread] = []
    closed: list[bool] = []

    @app.get("/ctx")
    async def ctx_stream() -> Response:
        loop_thread.append(threading.current_thread())

        def gen() -> Iterator[str]:
            try:
                for i in range(2):
                    # Pushed in the worker thread, popped there after the last block.
                    on_loop = threading.current_thread() is loop_thread[0]
                    yield f"{request.args['name']}{i}{on_loop};"
            finally:
                closed.append(True)

        return Response(stream_with_context(gen()), mimetype="text/plain")

    async def scenario() -> str:
        async with ext.test_client() as client:
            return (await client.get("/ctx", params={"name": "n"})).text

    assert run(scenario()) == "n0False;n1False;"
    assert closed == [True]


# -- stock Flask behaviour without a server loop -----------------------------
def test_flask_test_client_runs_async_views_as_stock_flask() -> None:
    app, _ = make_app()
    loops: list[object] = []

    @app.get("/a")
    async def view() -> str:
        loops.append(asyncio.get_running_loop())
        return "stock"

    with app.test_client() as client:
        assert client.get("/a").text == "stock"
        assert client.get("/a").text == "stock"
    # asgiref's async_to_sync: a new loop per call, as in stock Flask.
    assert len(loops) == 2
    assert loops[0] is not loops[1]


def test_background_task_without_a_server_runs_inline() -> None:
    app, ext = make_app()
    done: list[str] = []

    async def job(value: str) -> None:
        done.append(value)

    @app.get("/bg")
    def bg() -> str:
        ext.add_background_task(job, "ran")
        return "ok"

    assert app.test_client().get("/bg").text == "ok"
    assert done == ["ran"]


def test_background_task_from_an_async_view_without_a_server_runs_inline() -> None:
    # Stock Flask (test client, flask run, gunicorn) runs an async view in an
    # asgiref event loop on the request's thread: the task cannot use that
    # thread's loop, yet must still run to completion, as documented.
    app, ext = make_app(PROPAGATE_EXCEPTIONS=True)
    done: list[tuple[str, str]] = []

    async def job(value: str) -> None:
        from flask import current_app

        await asyncio.sleep(0)
        done.append((value, current_app.name))

    def sync_job(value: str) -> None:
        done.append((value, "sync"))

    @app.post("/bg")
    async def bg() -> str:
        ext.add_background_task(job, "async")
        ext.add_background_task(sync_job, "plain")
        return "ok"

    response = app.test_client().post("/bg")
    assert response.status_code == 200, response.text
    assert done == [("async", "flaskext_inprocess"), ("plain", "sync")]


# -- lifespan ----------------------------------------------------------------
def test_serving_hooks_order_and_background_tasks_awaited() -> None:
    app, ext = make_app()
    events: list[str] = []

    @ext.before_serving
    def sync_start() -> None:
        events.append("before-sync")

    @ext.before_serving
    async def async_start() -> None:
        events.append("before-async")

    @ext.while_serving
    async def around() -> AsyncIterator[None]:
        events.append("while-up")
        yield
        events.append("while-down")

    @ext.after_serving
    async def stop() -> None:
        events.append("after")

    async def job() -> None:
        await asyncio.sleep(0.01)
        # As in Quart: background tasks are awaited before after_serving runs,
        # so what it closes is still open here.
        events.append("background")

    @app.get("/kick")
    async def kick() -> str:
        ext.add_background_task(job)
        return "kicked"

    async def scenario() -> None:
        async with ext.test_client() as client:
            assert (await client.get("/kick")).text == "kicked"

    run(scenario())
    assert events == [
        "before-sync",
        "before-async",
        "while-up",
        "background",
        "after",
        "while-down",
    ]


def test_background_task_from_a_sync_view_runs_on_the_serving_loop() -> None:
    app, ext = make_app()
    ran_on: list[object] = []

    async def job() -> None:
        from flask import current_app

        ran_on.append((asyncio.get_running_loop(), current_app.name))

    @app.get("/sync-kick")
    def kick() -> str:
        ext.add_background_task(job)
        return threading.current_thread().name

    async def scenario() -> tuple[str, object]:
        async with ext.test_client() as client:
            thread = (await client.get("/sync-kick")).text
            return thread, asyncio.get_running_loop()

    thread, loop = run(scenario())
    assert thread.startswith("asgishift-bridge")
    assert ran_on == [(loop, "flaskext_inprocess")]


def test_async_teardown_of_an_async_route_is_run_on_the_loop() -> None:
    app, ext = make_app()
    torn: list[tuple[object, str]] = []
    signals: dict[str, asyncio.Event] = {}

    @app.teardown_request
    async def teardown(exc: BaseException | None) -> None:
        torn.append((asyncio.get_running_loop(), request.path))
        signals["torn"].set()

    @app.get("/t")
    async def view() -> str:
        return "ok"

    async def scenario() -> object:
        signals["torn"] = asyncio.Event()
        async with ext.test_client() as client:
            assert (await client.get("/t")).text == "ok"
            await asyncio.wait_for(signals["torn"].wait(), 5)
            return asyncio.get_running_loop()

    loop = run(scenario())
    assert torn == [(loop, "/t")]


def test_async_context_processor_in_an_async_view_without_a_server() -> None:
    # Flask's test client (or a WSGI server) runs the async view in asgiref's
    # loop on the request's thread, where asgiref refuses to run the context
    # processor: the app behaves as it does when served.
    from flask import render_template_string

    app, _ext = make_app()

    @app.context_processor
    async def inject() -> dict[str, str]:
        return {"who": "async processor"}

    @app.get("/page")
    async def page() -> str:
        return render_template_string("hello {{ who }}")

    @app.get("/sync-page")
    def sync_page() -> str:
        return render_template_string("sync {{ who }}")

    client = app.test_client()
    assert client.get("/page").text == "hello async processor"
    assert client.get("/sync-page").text == "sync async processor"


def test_async_appcontext_teardown_of_hooks_and_tasks_runs_on_the_loop() -> None:
    app, ext = make_app()
    loops: list[object] = []

    @app.teardown_appcontext
    async def close_resources(exc: BaseException | None) -> None:
        loops.append(asyncio.get_running_loop())

    @ext.before_serving
    async def start() -> None:
        pass

    async def job() -> None:
        pass

    @app.get("/kick")
    async def kick() -> str:
        ext.add_background_task(job)
        return "kicked"

    async def scenario() -> object:
        async with ext.test_client() as client:
            assert (await client.get("/kick")).text == "kicked"
        return asyncio.get_running_loop()

    loop = run(scenario())
    # startup, the request, the background task and shutdown: all on the server's loop.
    assert len(loops) == 4
    assert all(seen is loop for seen in loops)


def test_async_context_processor_renders_in_an_async_view() -> None:
    # render_template calls context processors through Flask's ensure_sync on
    # the loop's thread; their result is needed (stock Flask runs them to
    # completion), unlike a teardown's.
    from flask import render_template_string

    app, ext = make_app()

    @app.context_processor
    async def inject() -> dict[str, str]:
        await asyncio.sleep(0)
        return {"who": "async processor"}

    @app.get("/page")
    async def page() -> str:
        return render_template_string("hello {{ who }}")

    @app.get("/stock")
    async def stock() -> str:
        return render_template_string("stock view, {{ who }}")

    async def scenario() -> tuple[int, str, str]:
        async with ext.test_client() as client:
            response = await client.get("/page")
        # Flask's own client, called on the thread of a loop the app was served on.
        plain = app.test_client().get("/stock").text
        return response.status_code, response.text, plain

    # The stock client runs the view on a helper thread's loop; the context
    # processor it calls from there must not wait for the (blocked) server loop.
    result = run(asyncio.wait_for(scenario(), 20))
    assert result == (200, "hello async processor", "stock view, async processor")


def test_background_task_past_shutdown_timeout_is_cancelled() -> None:
    app, ext = make_app(ASGISHIFT_SHUTDOWN_TIMEOUT=0.05)
    outcome: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    @app.get("/start")
    async def start() -> str:
        ext.add_background_task(forever)
        return "started"

    async def scenario() -> None:
        async with ext.test_client() as client:
            await client.get("/start")

    run(scenario())
    assert outcome == ["cancelled"]


def test_failing_before_serving_fails_startup_with_the_error() -> None:
    _app, ext = make_app()

    @ext.before_serving
    async def broken() -> None:
        raise LookupError("database unreachable")

    async def scenario() -> None:
        async with ext.test_client():
            pass

    with pytest.raises(RuntimeError, match="LookupError: database unreachable"):
        run(scenario())


def test_while_serving_needs_an_async_generator() -> None:
    _, ext = make_app()
    with pytest.raises(TypeError, match="async generator"):
        ext.while_serving(lambda: None)


# -- WebSockets --------------------------------------------------------------
@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://shop.example", "wss://shop.example/ws|https://shop.example/page|True"),
        ("http://shop.example", "ws://shop.example/ws|http://shop.example/page|False"),
    ],
)
def test_url_for_in_a_websocket_view_keeps_the_connections_security(
    base_url: str, expected: str
) -> None:
    """A ``wss`` handshake (TLS, or a proxy's X-Forwarded-Proto read by the server)
    builds ``wss://`` and ``https://`` URLs: Werkzeug turned its ``wss`` scheme into
    ``ws`` once it saw the Upgrade headers, so URLs came out insecure."""
    app, ext = make_app()

    @app.get("/page")
    def page() -> str:
        return "page"

    @app.route("/ws", websocket=True)
    async def ws_view(ws: WebSocket) -> None:
        urls = (url_for("ws_view", _external=True), url_for("page", _external=True))
        await ws.send("|".join((*urls, str(request.is_secure))))

    async def scenario() -> str | bytes:
        async with (
            AsyncTestClient(ext.asgi_app, base_url=base_url) as client,
            client.websocket("/ws") as ws,
        ):
            return await ws.receive()

    assert run(scenario()) == expected


def test_websocket_route_with_converters_session_and_refusal() -> None:
    app, ext = make_app()

    @app.before_request
    def gate() -> Any:
        if request.args.get("token") == "bad":
            return "no entry", 403
        if request.args.get("token") == "crash":
            raise RuntimeError("before_request failed on a handshake")
        return None

    @app.get("/login")
    async def login() -> str:
        session["user"] = "ada"
        return "ok"

    @ext.websocket("/echo/<int:times>")
    async def echo(ws: WebSocket, times: int) -> None:
        try:
            while True:
                data = await ws.receive()
                await ws.send(data * times)
                if data == "bye":
                    await ws.close(4000)
                    return
        except WebSocketDisconnect:
            return

    @app.route("/who", websocket=True)
    async def who(ws: WebSocket) -> None:
        await ws.accept(subprotocol="chat.v1")
        await ws.send(str(session.get("user")))

    async def scenario() -> None:
        async with ext.test_client() as client:
            await client.get("/login")
            async with client.websocket("/echo/2") as ws:
                await ws.send("ab")
                assert await ws.receive() == "abab"
                await ws.send(b"\x00")
                assert await ws.receive() == b"\x00\x00"
                await ws.send("bye")
                assert await ws.receive() == "byebye"
                with pytest.raises(WebSocketDisconnect) as closed:
                    await ws.receive()
                assert closed.value.code == 4000
            async with client.websocket("/who", subprotocols=["chat.v1"]) as ws:
                assert ws.subprotocol == "chat.v1"
                assert await ws.receive() == "ada"
            with pytest.raises(WebSocketRejected) as refused:
                async with client.websocket("/echo/2?token=bad"):
                    pass
            assert (refused.value.status, refused.value.body) == (403, b"no entry")
            with pytest.raises(WebSocketRejected) as crashed:
                async with client.websocket("/echo/2?token=crash"):
                    pass
            assert crashed.value.status == 500
            with pytest.raises(WebSocketRejected) as missing:
                async with client.websocket("/nowhere"):
                    pass
            assert missing.value.status == 404

    run(scenario())


def test_refused_handshake_goes_through_the_apps_error_handlers() -> None:
    # abort(401) in before_request (Flask-Login's unauthorized() does this) and
    # an unknown WebSocket URL get the app's own error pages, as HTTP requests do.
    app, ext = make_app()

    @app.before_request
    def guard() -> None:
        if request.args.get("token") == "none":
            abort(401)
        if request.args.get("token") == "crash":
            raise KeyError("no token store")

    @app.errorhandler(401)
    def unauthorized(e: Exception) -> Any:
        return jsonify(error="login first"), 401

    @app.errorhandler(404)
    async def not_found(e: Exception) -> Any:
        return jsonify(error="no such socket", path=request.path), 404

    @app.errorhandler(KeyError)
    def key_error(e: Exception) -> Any:
        return jsonify(error="store down"), 503

    @ext.websocket("/feed")
    async def feed(ws: WebSocket) -> None:
        await ws.send("x")

    async def refused(client: Any, path: str) -> tuple[int, bytes]:
        with pytest.raises(WebSocketRejected) as info:
            async with client.websocket(path):
                pass
        return info.value.status, info.value.body

    async def scenario() -> list[tuple[int, bytes]]:
        async with ext.test_client() as client:
            return [
                await refused(client, "/feed?token=none"),
                await refused(client, "/nowhere"),
                await refused(client, "/feed?token=crash"),
            ]

    assert run(scenario()) == [
        (401, b'{"error":"login first"}\n'),
        (404, b'{"error":"no such socket","path":"/nowhere"}\n'),
        (503, b'{"error":"store down"}\n'),
    ]


def test_http_request_to_websocket_rule_is_not_served_as_view() -> None:
    _app, ext = make_app()

    @ext.websocket("/only-ws")
    async def only(ws: WebSocket) -> None:
        await ws.send("x")

    async def scenario() -> int:
        async with ext.test_client() as client:
            return (await client.get("/only-ws")).status_code

    assert run(scenario()) == 400


def test_push_only_websocket_view_gets_disconnect_from_send() -> None:
    _app, ext = make_app()
    ended: list[int] = []

    @ext.websocket("/push")
    async def push(ws: WebSocket) -> None:
        try:
            while True:
                await ws.send("tick")
                await asyncio.sleep(0)
        except WebSocketDisconnect as exc:
            ended.append(exc.code)
            raise

    async def scenario() -> None:
        async with ext.test_client() as client, client.websocket("/push") as ws:
            assert await ws.receive() == "tick"
            # close() waits for the view: it must end once the client has gone.
            await asyncio.wait_for(ws.close(4003), 5)

    run(scenario())
    assert ended == [4003]


def test_websocket_view_sending_before_receiving_gets_messages_in_order() -> None:
    _app, ext = make_app()
    got: list[Any] = []

    @ext.websocket("/burst")
    async def burst(ws: WebSocket) -> None:
        # Two sends in a row: a watcher reads for the view from here on.
        await ws.send("a")
        await ws.send("b")
        try:
            while True:
                got.append(await ws.receive())
                await ws.send("ack")
        except WebSocketDisconnect as exc:
            got.append(exc.code)

    async def scenario() -> None:
        async with ext.test_client() as client, client.websocket("/burst") as ws:
            assert [await ws.receive(), await ws.receive()] == ["a", "b"]
            for item in ("1", b"2", "3"):
                await ws.send(item)
            assert [await ws.receive() for _ in range(3)] == ["ack"] * 3
            await ws.close(4004)

    run(scenario())
    assert got == ["1", b"2", "3", 4004]


def test_sync_bodies_of_async_views_get_as_many_threads_as_the_bridge_pool() -> None:
    # The loop's default executor has at most 32 threads (min(32, cpu + 4)), six on a
    # 2-core machine: streams whose sync generators wait in next() (an SSE feed blocked
    # on a queue) must each get a thread up to max_workers (40 by default), as sync views do.
    streams = 33
    app, ext = make_app()
    barrier = threading.Barrier(streams, timeout=5)

    @app.get("/meet")
    async def meet() -> Response:
        def gen() -> Iterator[bytes]:
            barrier.wait()  # every stream's first block waits for all the others
            yield b"met"

        return Response(gen(), mimetype="text/plain")

    async def scenario() -> list[str]:
        async with ext.test_client() as client:
            replies = await asyncio.gather(*(client.get("/meet") for _ in range(streams)))
            return [reply.text for reply in replies]

    assert run(scenario()) == ["met"] * streams
