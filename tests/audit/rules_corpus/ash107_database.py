"""ASH107 blocking-database-driver: sqlite3 through its dbapi2 module, SQLAlchemy's sync API."""

import sqlite3.dbapi2 as sqlite3
from typing import Annotated

from fastapi import Depends
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import Session as HeroSession
from sqlmodel.ext.asyncio.session import AsyncSession as AsyncHeroSession

engine = create_engine("sqlite://")
SessionLocal = sessionmaker(bind=engine)
# FastAPI's dependency aliases: a parameter annotated with one is the session.
SessionDep = Annotated[HeroSession, Depends(SessionLocal)]
AsyncSessionDep = Annotated[AsyncHeroSession, Depends(SessionLocal)]


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


async def sqlmodel_heroes(hero_engine, statement):
    from sqlmodel import Session as ModelSession

    with ModelSession(hero_engine) as session:
        return session.exec(statement).all()  # error: ASH107:16


async def sqlmodel_typed(statement):
    from sqlmodel import Session as ModelSession
    from sqlmodel.ext.asyncio.session import AsyncSession

    def load(session: ModelSession):
        return session.exec(statement).first()  # error: ASH107:16

    async with AsyncSession(engine) as session:
        await session.exec(statement)  # ok: SQLModel's async session
    return load(ModelSession(engine))


async def sqlmodel_in_thread(statement):
    from asgiref.sync import sync_to_async
    from sqlmodel import Session as ModelSession

    with ModelSession(engine) as session:
        return await sync_to_async(session.exec)(statement)  # ok: runs in a thread


async def read_heroes(session: SessionDep, statement):
    return session.exec(statement).all()  # error: ASH107:12


async def read_heroes_async(session: AsyncSessionDep, statement):
    return (await session.exec(statement)).all()  # ok: SQLModel's async session
