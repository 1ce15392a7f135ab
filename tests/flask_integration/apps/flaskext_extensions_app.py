"""A Flask app built the way teams build theirs: an app factory with Flask-Login,
Flask-SQLAlchemy (SQLite), Flask-WTF (CSRF), Flask-CORS, Flask-Limiter,
Flask-Babel, Flask-Caching and Flask-Session, behind asgishift's extension.

Every feature has a sync and an async view (``/<kind>/...``, ``kind`` being
``sync`` or ``async``) under a blueprint, so a test can check that both
behave the same. Served by ``test_flaskext_extensions_live.py`` as
``flaskext_extensions_app:asgi_app`` and by ``flask --app
flaskext_extensions_app:create_app run``.

Environment: ``FLASKEXT_EXT_DIR`` is a directory of its own for the SQLite
file, Flask-Session's files and the files served; ``FLASKEXT_EXT_PROXY=1``
wraps ``app.wsgi_app`` in ``ProxyFix`` (one proxy: ``X-Forwarded-For``,
``-Proto``, ``-Host``, ``-Prefix``).

Every request with an ``X-Trace`` header records its hooks, signals and
teardown in :data:`traces`, read back from ``/trace/<id>`` (teardown runs after
the response went out, so a test waits for it).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cachelib import FileSystemCache
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    g,
    jsonify,
    redirect,
    render_template_string,
    request,
    send_file,
    send_from_directory,
    session,
    stream_with_context,
    url_for,
)
from flask.signals import got_request_exception, request_started
from flask_babel import Babel, get_locale, gettext
from flask_caching import Cache
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_user
from flask_session import Session
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from wtforms import StringField
from wtforms.validators import DataRequired

from asgishift.flask_integration import ASGI, WebSocket

#: The origin Flask-CORS allows on ``/<kind>/...``.
ALLOWED_ORIGIN = "https://app.example"
#: What Flask-Limiter allows per client address on ``/<kind>/limited``.
LIMIT = "2/minute"
#: Size in bytes of ``files/blob.bin``.
BLOB_SIZE = 300_000


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
cors = CORS()
limiter = Limiter(get_remote_address, storage_uri="memory://")
babel = Babel()
cache = Cache()
server_session = Session()
ext = ASGI()

#: X-Trace id -> what happened while serving that request, in order.
traces: dict[str, list[str]] = {}
#: How many times each cached view really ran.
calls: dict[str, int] = {"sync": 0, "async": 0}


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)


class LoginForm(FlaskForm):
    name = StringField("name", validators=[DataRequired()])


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def trace(event: str) -> None:
    """Record ``event`` for the current request when it carries ``X-Trace``."""
    key = request.headers.get("X-Trace")
    if key:
        traces.setdefault(key, []).append(event)


def blob_bytes() -> bytes:
    """The content of ``files/blob.bin``: every byte value, repeated."""
    return bytes(range(256)) * (BLOB_SIZE // 256) + bytes(range(BLOB_SIZE % 256))


def make_blueprint(kind: str) -> Blueprint:
    """The same views as ``def`` (``kind="sync"``) or ``async def`` functions."""
    bp = Blueprint(kind, __name__, url_prefix=f"/{kind}")
    is_async = kind == "async"

    def view(func: Any) -> Any:
        """Make ``func`` (a plain function) an ``async def`` view for the async blueprint."""
        if not is_async:
            return func

        async def async_view(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return func(*args, **kwargs)

        async_view.__name__ = func.__name__
        return async_view

    def where() -> str:
        return threading.current_thread().name

    # The blueprint's own hooks: Flask runs them after the app's before_request
    # functions, and before the app's after_request and teardown functions.
    @bp.before_request
    def bp_before() -> None:
        trace(f"{kind}.before_request")

    @bp.after_request
    def bp_after(response: Response) -> Response:
        trace(f"{kind}.after_request")
        return response

    @bp.teardown_request
    def bp_teardown(error: BaseException | None) -> None:
        trace(f"{kind}.teardown_request")

    bp.add_url_rule("/where", "where", view(lambda: jsonify(thread=where())))

    def urls() -> Any:
        return jsonify(
            external=url_for(f"{kind}.urls", _external=True),
            path=request.path,
            root_path=request.root_path,
            remote_addr=request.remote_addr,
            scheme=request.scheme,
        )

    bp.add_url_rule("/urls", "urls", view(urls))

    @bp.route("/hooks", endpoint="hooks")
    @view
    def hooks() -> Any:
        trace("view")
        if request.args.get("fail") == "view":
            raise RuntimeError("view failed")
        if request.args.get("abort"):
            abort(int(request.args["abort"]))
        return "hooks ran"

    @bp.route("/hello", endpoint="hello")
    @view
    def hello() -> Any:
        return jsonify(greeting=gettext("Hello"), locale=str(get_locale()))

    @bp.route("/cached", endpoint="cached")
    @cache.cached(timeout=300)
    @view
    def cached() -> Any:
        calls[kind] += 1
        return jsonify(calls=calls[kind])

    @bp.route("/counter", endpoint="counter")
    @view
    def counter() -> Any:
        session["count"] = session.get("count", 0) + 1
        return jsonify(count=session["count"])

    @bp.route("/limited", endpoint="limited")
    @limiter.limit(LIMIT)
    @view
    def limited() -> Any:
        return "within the limit"

    @bp.route("/me", endpoint="me")
    @view
    def me() -> Any:
        if not current_user.is_authenticated:
            return jsonify(name=None), 401
        return jsonify(name=current_user.name)

    @bp.route("/note", methods=["POST"], endpoint="note")
    @view
    def note() -> Any:
        return jsonify(text=request.form["text"]), 201

    @bp.route("/file", endpoint="file")
    @view
    def file() -> Any:
        return send_file(Path(os.environ["FLASKEXT_EXT_DIR"]) / "files" / "blob.bin")

    @bp.route("/files/<path:name>", endpoint="files")
    @view
    def files(name: str) -> Any:
        return send_from_directory(Path(os.environ["FLASKEXT_EXT_DIR"]) / "files", name)

    @bp.route("/stream", endpoint="stream")
    @view
    def stream() -> Any:
        g.streamed_by = kind

        def generate() -> Iterator[str]:
            # Reads the request and g while the body is sent.
            yield f"{request.path}|"
            yield f"{g.streamed_by}|"
            yield request.args.get("word", "none")

        return Response(stream_with_context(generate()), mimetype="text/plain")

    return bp


def make_quota_blueprint() -> Blueprint:
    """Views limited through their blueprint (Flask-Limiter's before-request check),
    so the async one stays an ``async def`` view served on the loop."""
    bp = Blueprint("quota", __name__, url_prefix="/quota")
    limiter.limit(LIMIT)(bp)

    @bp.get("/sync")
    def quota_sync() -> Any:
        return jsonify(remote_addr=request.remote_addr)

    @bp.get("/async")
    async def quota_async() -> Any:
        await asyncio.sleep(0)
        return jsonify(remote_addr=request.remote_addr)

    return bp


def create_app() -> Flask:
    """The app factory (Flask's "Application Factories" pattern)."""
    base = Path(os.environ["FLASKEXT_EXT_DIR"])
    (base / "files").mkdir(exist_ok=True)
    blob = base / "files" / "blob.bin"
    if not blob.exists():
        blob.write_bytes(blob_bytes())
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="extensions-tests",
        SQLALCHEMY_DATABASE_URI="sqlite:///" + str(base / "app.sqlite"),
        CACHE_TYPE="SimpleCache",
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=FileSystemCache(cache_dir=str(base / "sessions")),
        BABEL_DEFAULT_LOCALE="en",
        RATELIMIT_HEADERS_ENABLED=True,
    )
    db.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    cors.init_app(app, resources={r"/(sync|async)/.*": {"origins": ALLOWED_ORIGIN}})
    limiter.init_app(app)
    babel.init_app(
        app, locale_selector=lambda: request.accept_languages.best_match(["en", "de", "fr"])
    )
    cache.init_app(app)
    server_session.init_app(app)
    ext.init_app(app)
    if os.environ.get("FLASKEXT_EXT_PROXY"):
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1
        )

    with app.app_context():
        db.create_all()
        if db.session.get(User, 1) is None:
            db.session.add(User(id=1, name="ada"))
            db.session.commit()

    for kind in ("sync", "async"):
        app.register_blueprint(make_blueprint(kind))
    app.register_blueprint(make_quota_blueprint())

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        form = LoginForm()
        if form.validate_on_submit():
            user = db.session.execute(db.select(User).filter_by(name=form.name.data)).scalar_one()
            login_user(user)
            return redirect(url_for("login"))
        return render_template_string(
            "<form method=post>{{ form.hidden_tag() }}{{ form.name() }}</form>", form=form
        )

    @app.get("/trace/<key>")
    def read_trace(key: str) -> Any:
        return jsonify(traces.get(key, []))

    @app.route("/ws/echo", websocket=True)
    async def echo(ws: WebSocket) -> None:
        message = await ws.receive()
        await ws.send(f"{request.remote_addr}|{url_for('echo', _external=True)}|{message}")

    @app.route("/ws/fail", websocket=True)
    async def fail(ws: WebSocket) -> None:
        if request.args.get("when") == "before-accept":
            raise RuntimeError("websocket view failed before accepting")
        await ws.receive()
        raise RuntimeError("websocket view failed")

    @app.before_request
    def before() -> Any:
        trace("before_request")
        if request.args.get("fail") == "before":
            raise RuntimeError("before_request failed")
        return None

    @app.after_request
    def after(response: Response) -> Response:
        trace(f"after_request:{response.status_code}")
        return response

    @app.teardown_request
    def teardown(error: BaseException | None) -> None:
        trace(f"teardown_request:{error!r}")
        if error is None and request.args.get("fail") == "teardown":
            # What committing in a teardown function does when the commit fails.
            raise RuntimeError("teardown failed")

    @app.errorhandler(500)
    def server_error(error: Any) -> Any:
        trace("errorhandler(500)")
        return jsonify(error="internal", cause=repr(error.original_exception)), 500

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        if request.path.startswith(("/sync/hooks", "/async/hooks")):
            trace(f"errorhandler(HTTPException):{error.code}")
            return jsonify(error=error.name, code=error.code), error.code
        return error

    def started(sender: Flask, **extra: Any) -> None:
        trace("request_started")

    def failed(sender: Flask, exception: BaseException, **extra: Any) -> None:
        trace(f"got_request_exception:{exception!r}")

    request_started.connect(started, app, weak=False)
    got_request_exception.connect(failed, app, weak=False)
    return app


app = create_app() if "FLASKEXT_EXT_DIR" in os.environ else None
asgi_app = app.extensions["asgishift"].asgi_app if app is not None else None
