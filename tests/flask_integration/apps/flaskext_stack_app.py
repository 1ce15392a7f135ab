"""Flask-Login, Flask-WTF (CSRF) and Flask-SQLAlchemy behind asgishift's extension.

Served by ``test_flaskext_stack_live.py`` as ``flaskext_stack_app:asgi_app``.
The SQLite file is ``$FLASKEXT_STACK_DB``. Async views read ``current_user``
(Flask-Login's user loader queries SQLAlchemy) and write through the
SQLAlchemy session; CSRF protection runs as a before-request hook. A
WebSocket view behind ``login_required`` greets the signed-in user.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from flask import Flask, jsonify, redirect, render_template_string
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from wtforms import StringField
from wtforms.validators import DataRequired

from asgishift.flask_integration import ASGI, WebSocket


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
ext = ASGI()


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)


class Note(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str]
    text: Mapped[str]


class LoginForm(FlaskForm):
    name = StringField("name", validators=[DataRequired()])


class NoteForm(FlaskForm):
    text = StringField("text", validators=[DataRequired()])


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


PAGE = "<form method=post>{{ form.hidden_tag() }}{{ form.name() }}</form>"


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="stack-tests",
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.environ["FLASKEXT_STACK_DB"],
    )
    db.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    ext.init_app(app)

    with app.app_context():
        db.create_all()
        if db.session.get(User, 1) is None:
            db.session.add(User(id=1, name="ada"))
            db.session.commit()

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        form = LoginForm()
        if form.validate_on_submit():
            user = db.session.execute(db.select(User).filter_by(name=form.name.data)).scalar_one()
            login_user(user)
            return redirect("/me")
        return render_template_string(PAGE, form=form)

    @app.get("/me")
    @login_required
    async def me() -> Any:
        await asyncio.sleep(0)
        return jsonify(name=current_user.name, authenticated=current_user.is_authenticated)

    @app.post("/notes")
    @login_required
    async def add_note() -> Any:
        form = NoteForm()
        if not form.validate():
            return jsonify(errors=form.errors), 400
        await asyncio.sleep(0)
        db.session.add(Note(owner=current_user.name, text=form.text.data))
        db.session.commit()
        return jsonify(ok=True), 201

    @app.route("/ws/whoami", websocket=True)
    @login_required
    async def whoami(ws: WebSocket) -> None:
        message = await ws.receive()
        await ws.send(f"{current_user.name}:{message}")

    @app.get("/notes")
    async def list_notes() -> Any:
        notes = db.session.execute(db.select(Note).order_by(Note.id)).scalars()
        return jsonify([{"owner": n.owner, "text": n.text} for n in notes])

    return app


app = create_app() if "FLASKEXT_STACK_DB" in os.environ else None
asgi_app = app.extensions["asgishift"].asgi_app if app is not None else None
