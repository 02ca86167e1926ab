"""SQLAlchemy engine, declarative Base, the scoped session and the unit of work.

Services receive a Session and only flush; exactly one place commits: the end of a request
(`jieyou.app`) or the end of a task (`infra.tasks.UnitOfWorkTask`). The exception is a statement
that is a whole unit of work by itself, run in autocommit when no transaction has begun
(`infra.driver.run_alone`: the counter's redeem).
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.types import TypeDecorator

from infra.errors import log_failure

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; INTEGER on SQLite so that primary keys stay rowid aliases.
BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonDoc = JSON().with_variant(postgresql.JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UtcDateTime(), dict[str, Any]: JsonDoc, list[dict[str, Any]]: JsonDoc,
                           list[str]: JsonDoc, list[int]: JsonDoc}


def make_engine(url: str, echo: bool = False, **kwargs: Any) -> Engine:
    """An engine whose errors (and echoed statements) never show the statement's parameters: they
    are phone numbers, names, reasons, and an error's text goes to the log."""
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN itself so that transactions (and savepoints) behave.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: SQLite's answer to SELECT ... FOR UPDATE.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, echo=echo, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling without a round trip per checkout: a connection that came
    back to the pool less than PING_AFTER_IDLE_SECONDS ago was talking to the server then, so only
    idler ones are pinged (and replaced if dead). A server restart in between fails at most one
    request per process: SQLAlchemy then invalidates every older pooled connection."""

    @event.listens_for(engine, "checkin")
    def _mark_idle(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if getattr(dbapi_conn, "broken", False) or getattr(dbapi_conn, "closed", False):
            raise DisconnectionError("connection is closed")
        if since is None or time.monotonic() - since <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            with dbapi_conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as exc:  # any failure means: throw this connection away, take another
            raise DisconnectionError(str(exc)) from exc


class Database:
    """Holds the engine and a scoped session; one per application."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.factory = sessionmaker(expire_on_commit=False)
        self.session: scoped_session[Session] = scoped_session(self.factory)

    def configure(self, engine: Engine, **session_kwargs: Any) -> None:
        self.engine = engine
        self.session.remove()
        self.factory.configure(bind=engine, **session_kwargs)

    @property
    def is_sqlite(self) -> bool:
        return self.engine is not None and self.engine.dialect.name == "sqlite"

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session that commits once at the end, or rolls back on any error."""
        session = self.factory()
        try:
            yield session
            session.commit()
            run_after_commit(session)
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


db = Database()

AFTER_COMMIT_KEY = "jieyou_after_commit"


def after_commit(session: Session, callback: Callable[[], Any], *, required: bool = False) -> None:
    """Run `callback` once the session's transaction has committed; dropped on rollback.

    This is how tasks are enqueued: never before the data they read is visible. `required`: the
    answer depends on it (a request whose whole point is the job it queues), so its failure is
    raised to the owner of the unit of work rather than only logged (`run_after_commit`).
    """
    session.info.setdefault(AFTER_COMMIT_KEY, []).append((callback, required))


def run_after_commit(session: Session) -> None:
    """Called by the unit-of-work owner once its commit has succeeded. A failing callback is
    logged, and the others still run: the data is already committed and the response must say so.
    Then the first failure of a `required` one is raised, for the owner to answer with (a request:
    its error instead of the view's answer); the commit stands."""
    failure: Exception | None = None
    for callback, required in session.info.pop(AFTER_COMMIT_KEY, []):
        try:
            callback()
        except Exception as exc:
            log_failure(log, "after-commit callback failed")
            if required and failure is None:
                failure = exc
    if failure is not None:
        raise failure


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop(AFTER_COMMIT_KEY, None)


def dialect_insert(session: Session) -> Any:
    """INSERT construct with ON CONFLICT support for the session's backend."""
    name = session.get_bind().dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert
