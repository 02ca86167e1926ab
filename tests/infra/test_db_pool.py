"""The pool pings only connections that sat idle, and replaces a dead one instead of failing."""
from __future__ import annotations

import psycopg
from sqlalchemy import text

from infra import db
from infra.db import make_engine
from tests.conftest import _pg_url


def test_busy_connection_is_not_pinged(pg_url, monkeypatch):
    engine = make_engine(pg_url, pool_size=1)
    pings: list[str] = []
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        original = psycopg.Cursor.execute

        def spy(cursor, query, *args, **kwargs):  # type: ignore[no-untyped-def]
            pings.append(query)
            return original(cursor, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", spy)
        with engine.connect() as conn:  # returned a moment ago: no ping
            conn.exec_driver_sql("SELECT 2")
        assert pings == ["SELECT 2"]
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", -1.0)
        with engine.connect() as conn:  # now "idle": pinged first
            conn.exec_driver_sql("SELECT 3")
        assert pings == ["SELECT 2", "SELECT 1", "SELECT 3"]
    finally:
        engine.dispose()


def test_dead_idle_connection_is_replaced(pg_url, monkeypatch):
    engine = make_engine(pg_url, pool_size=1)
    try:
        with engine.connect() as conn:
            first_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(_pg_url("postgres").replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [first_pid])
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", -1.0)
        with engine.connect() as conn:  # the ping finds it dead; the pool connects afresh
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != first_pid
    finally:
        engine.dispose()


def test_a_connection_found_dead_on_the_driver_path_is_not_handed_out_again(pg_url):
    """Statements run straight on psycopg (infra.driver) bypass SQLAlchemy's disconnect handling;
    a dead connection found there is invalidated all the same."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.orm import Session

    from infra.driver import execute

    engine = make_engine(pg_url, pool_size=1)
    try:
        with Session(engine) as session:
            first_pid = execute(session, "SELECT pg_backend_pid()", fetch=True)[0][0]
            session.commit()
        with psycopg.connect(_pg_url("postgres").replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [first_pid])
        with Session(engine) as session:  # checked out a moment ago: not pinged, so it fails once
            try:
                execute(session, "SELECT 1", fetch=True)
                raise AssertionError("the dead connection answered")
            except DBAPIError as exc:
                assert exc.connection_invalidated
        with Session(engine) as session:
            assert execute(session, "SELECT pg_backend_pid()", fetch=True)[0][0] != first_pid
    finally:
        engine.dispose()
