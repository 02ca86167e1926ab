"""Statements run straight on the driver, for the few hot paths where SQLAlchemy's execution and
result layers cost more client CPU than the query itself (the posting statement and the batch
writes, the counter's claim and record, the API-key look-up, the scoring bulk writes).
PostgreSQL only; callers keep a SQLAlchemy path for other databases."""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import namedtuple_row, tuple_row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


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
    raw = connection.connection.driver_connection
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
            connection.invalidate(exc)
        raise error from exc


# Named rows: the row type per statement text, built once from the first result's columns (psycopg's
# namedtuple_row works the names out from the result description on every call).
_ROW_TYPES: dict[str, Any] = {}


def driver_rows(session: Session, sql: str, params: Any) -> list[Any]:
    """Rows as named tuples."""
    return execute(session, sql, params, fetch=True, named=True)
