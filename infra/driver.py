"""Statements run straight on the driver, for the few hot paths where SQLAlchemy's execution and
result layers cost more client CPU than the query itself (the counter's claim and record, the
API-key look-up). PostgreSQL only; callers keep a SQLAlchemy path for other databases."""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def driver_rows(session: Session, sql: str, params: dict[str, Any]) -> list[Any]:
    """Run psycopg-style SQL (`%(name)s`) on the session's connection, inside its transaction;
    rows as named tuples. Errors come out as SQLAlchemy's exception types, so the app's handlers
    (409 on a constraint race, 503 when the database is busy) treat them as before."""
    raw = session.connection().connection.driver_connection
    try:
        with raw.cursor(row_factory=namedtuple_row) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, params, exc, psycopg.Error) from exc
