"""SQLAlchemy's legacy Query API, scoped sessions and Flask-SQLAlchemy's ``db.session``."""

from __future__ import annotations

from pathlib import Path

from asgishift.audit._model import AuditConfig
from asgishift.audit.engine import audit_paths

EXTENSIONS = """from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import scoped_session, sessionmaker

db = SQLAlchemy()
db_session = scoped_session(sessionmaker())
"""

#: (line, callee) of each blocking call expected in VIEWS.
VIEWS = """from flask import Flask
from sqlalchemy.orm import Session

from shop import extensions
from shop.extensions import db, db_session
from shop.models import User

app = Flask(__name__)


@app.get("/")
async def index(session: Session):
    db.session.commit()
    extensions.db.session.rollback()
    first = db.session.query(User).filter(User.id > 1).order_by(User.id).first()
    db_session.add(first)
    everyone = session.query(User).filter_by(active=True).all()
    query = session.query(User).filter(User.id > 1)
    return query, everyone, db_session.query(User).count()
"""
EXPECTED = [
    (13, "sqlalchemy.orm.Session.commit"),
    (14, "sqlalchemy.orm.Session.rollback"),
    (15, "sqlalchemy.orm.Query.first"),
    (17, "sqlalchemy.orm.Query.all"),
    (19, "sqlalchemy.orm.Query.count"),
]


def test_queries_through_flask_sqlalchemy_and_scoped_sessions_are_blocking(
    tmp_path: Path,
) -> None:
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "__init__.py").write_text("", encoding="utf-8")
    (shop / "extensions.py").write_text(EXTENSIONS, encoding="utf-8")
    (shop / "models.py").write_text("class User:\n    id = 0\n", encoding="utf-8")
    (shop / "views.py").write_text(VIEWS, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert result.errors == []
    found = sorted((f.line, f.args["call"]) for f in result.findings if f.code == "ASH107")
    # `db_session.add(...)` only stages the object and `query` is never run here.
    assert found == EXPECTED


FASTAPI_VIEWS = """from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session
from sqlmodel import Session as ModelSession, select

app = FastAPI()


def get_db():
    yield None


@app.get("/items")
async def items(db: Annotated[Session, Depends(get_db)]):
    return db.query(int).all()


@app.get("/heroes")
async def heroes(session: Annotated[ModelSession, Depends(get_db)]):
    hero = session.get(int, 1)
    return hero, session.execute(select(int)).all()


async def made_here(engine):
    with ModelSession(engine) as session:
        session.commit()
"""


def test_annotated_dependencies_and_sqlmodel_sessions_are_typed(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(FASTAPI_VIEWS, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert result.errors == []
    found = sorted((f.line, f.args["call"]) for f in result.findings if f.code == "ASH107")
    assert found == [
        (16, "sqlalchemy.orm.Query.all"),
        (21, "sqlalchemy.orm.Session.get"),
        (22, "sqlalchemy.orm.Session.execute"),
        (27, "sqlalchemy.orm.Session.commit"),
    ]


DEPS = """from typing import Annotated

from fastapi import Depends
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession


def get_db(): ...


SessionDep = Annotated[Session, Depends(get_db)]
AsyncSessionDep = Annotated[AsyncSession, Depends(get_db)]
"""
ROUTES = """from sqlmodel import select

from app.deps import AsyncSessionDep, SessionDep


async def items(session: SessionDep):
    return session.exec(select(1)).all()


async def async_items(session: AsyncSessionDep):
    return (await session.exec(select(1))).all()


def sync_items(session: SessionDep):
    return session.exec(select(1)).all()
"""


def test_a_dependency_alias_imported_from_another_module_types_the_parameter(
    tmp_path: Path,
) -> None:
    # full-stack-fastapi-template's layout: the alias lives in app/deps.py
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "app" / "deps.py").write_text(DEPS, encoding="utf-8")
    (tmp_path / "app" / "routes.py").write_text(ROUTES, encoding="utf-8")
    result = audit_paths([tmp_path], root=tmp_path, config=AuditConfig(cache_dir=None))
    assert result.errors == []
    found = [(f.path, f.line, f.args["call"]) for f in result.findings]
    assert found == [("app/routes.py", 7, "sqlmodel.Session.exec")]
