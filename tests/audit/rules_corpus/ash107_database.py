"""ASH107 blocking-database-driver: sqlite3 through its dbapi2 module, SQLAlchemy's sync API."""

import sqlite3.dbapi2 as sqlite3

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

engine = create_engine("sqlite://")
SessionLocal = sessionmaker(bind=engine)


async def count(db):
    conn = sqlite3.connect(db)  # error: ASH107:12
    return conn.execute("select 1").fetchone()  # error: ASH107:12


def list_users(session: Session):
    return session.execute("select * from users")  # error: ASH107:12


async def users():
    with SessionLocal() as session:
        return list_users(session)


async def ping():
    with engine.connect() as conn:  # error: ASH107:10
        conn.execute("select 1")  # error: ASH107:9


async def save_user(user):
    db = SessionLocal()
    db.add(user)
    db.commit()  # error: ASH107:5


async def scratch():
    mem = sqlite3.connect(":memory:")  # ok: an in-memory database touches no disk
    return mem.execute("select 1").fetchone()  # ok: nor do its queries
