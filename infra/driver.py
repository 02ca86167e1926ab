"""Statements run straight on the driver, for the few hot paths where SQLAlchemy's execution and
result layers cost more client CPU than the query itself (the posting statement and the batch
writes, the counter's claim and redeem, the API-key look-up, the scoring bulk writes), and
`run_alone` for a statement that is a unit of work by itself. PostgreSQL only; callers keep a
SQLAlchemy path for other databases."""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import namedtuple_row, tuple_row
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, scoped_session


def on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def execute(session: Session, sql: str, params: Any = None, *, fetch: bool = False, binary: bool = False,
            named: bool = False) -> list[Any]:
    """Run psycopg-style SQL on the session's connection, inside its transaction (or as its own
    transaction on an autocommit connection). `binary`: results in binary. Errors come out as
    SQLAlchemy's exception types (IntegrityError for a constraint, and so on; the driver's error is
    `.orig`), so the app's handlers (409 on a constraint race, 503 when the database is busy) treat
    them as everywhere else."""
    connection = session.connection()
    return _run(connection, connection.connection.driver_connection, sql, params, fetch, binary, named)


def _run(owner: Any, raw: psycopg.Connection[Any], sql: str, params: Any, fetch: bool, binary: bool,
         named: bool) -> list[Any]:
    try:
        with raw.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(sql, params, binary=binary)
            if not fetch:
                return []
            rows = cursor.fetchall()
            if named and rows:
                row_type = _ROW_TYPES.get(sql)
                if row_type is None or len(row_type._fields) != len(rows[0]):
                    row_type = _ROW_TYPES[sql] = namedtuple_row(cursor)(rows[0]).__class__
                return [row_type._make(row) for row in rows]
            return rows
    except psycopg.Error as exc:
        error = DBAPIError.instance(sql, params, exc, psycopg.Error, connection_invalidated=raw.broken)
        if raw.broken:  # as SQLAlchemy does on a disconnect: the pool must not hand it out again
            owner.invalidate(exc)
        raise error from exc


def in_transaction(session: Session | scoped_session[Session]) -> bool:
    """Whether the session (or the request's, behind a scoped_session) has begun a transaction."""
    return (session() if isinstance(session, scoped_session) else session).in_transaction()


def run_alone(session: Session, sql: str, params: Any) -> list[Any]:
    """Named rows of one statement that is a whole unit of work: a function that either finishes
    or raises, never leaving part of its writes (the counter's redeem).

    When the session has not begun a transaction, the statement runs on a pooled connection in
    autocommit, as its own transaction: no BEGIN and no COMMIT round trips, each of which costs
    the web worker about as much CPU as the statement. Otherwise (the request has read or written
    already, or a test holds the session in a transaction) it runs inside that transaction, in a
    savepoint, so that a refusal leaves the transaction usable and the request's commit decides."""
    bind = session.get_bind()
    if not isinstance(bind, Engine) or in_transaction(session):
        with session.begin_nested():
            return execute(session, sql, params, fetch=True, named=True)
    pooled = bind.raw_connection()
    raw = pooled.driver_connection
    try:
        raw.autocommit = True
        rows = _run(pooled, raw, sql, params, True, False, True)
        raw.autocommit = False
        return rows
    except DBAPIError:  # the statement failed (a refusal, say) and the connection is idle again
        if not raw.broken:
            _reset_or_discard(pooled, raw)
        raise
    except BaseException:  # interrupted mid-statement: its state is unknown, it must not be reused
        pooled.invalidate()
        raise
    finally:
        pooled.close()


def _reset_or_discard(pooled: Any, raw: psycopg.Connection[Any]) -> None:
    """Back to the pool only as the pool hands connections out: not in autocommit."""
    try:
        raw.autocommit = False
    except Exception:  # noqa: BLE001 - any failure: replace the connection rather than guess
        pooled.invalidate()


# Named rows: the row type per statement text, built once from the first result's columns (psycopg's
# namedtuple_row works the names out from the result description on every call).
_ROW_TYPES: dict[str, Any] = {}


def driver_rows(session: Session, sql: str, params: Any) -> list[Any]:
    """Rows as named tuples."""
    return execute(session, sql, params, fetch=True, named=True)
