"""Redemption rows written straight to the driver, handed back as ORM objects.

Why: the counter writes rows whose every column it knows (a redemption, a hold, a refund); a
unit-of-work flush for them would cost more than the INSERT. These helpers put such a row in the
session as if it had been loaded, so later ORM use (refresh, refunds) works, or build a detached
object for a row that was committed on its own."""
from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session, configure_mappers, make_transient_to_detached

from infra.driver import driver_rows, on_postgresql


def persisted(session: Session, model: type, values: dict[str, Any]) -> Any:
    """INSERT and hand back an object of the session as if loaded: no unit-of-work flush for a
    row whose every column is known, yet later ORM use (refresh, refunds) works. On PostgreSQL
    the row goes straight to the driver; dict values are the JSONB columns."""
    table = model.__table__
    if on_postgresql(session):
        columns = tuple(values)
        sql = _INSERTS.get((model, columns))
        if sql is None:
            sql = _INSERTS[(model, columns)] = (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
                                                 f"({', '.join(f'%({k})s' for k in columns)}) RETURNING id")
        params = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in values.items()}
        new_id = driver_rows(session, sql, params)[0].id
    else:
        new_id = session.execute(table.insert().returning(table.c.id), values).scalar_one()
    return attached(session, model, new_id, values)


def attached(session: Session, model: type, new_id: int, values: dict[str, Any]) -> Any:
    """The object of a row just written in the session's transaction with these values, in the
    session as if loaded: no unit-of-work flush for a row whose every column is known, yet later
    ORM use (refresh, refunds) works."""
    obj = loaded(model, new_id, values)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


def loaded(model: type, new_id: int, values: dict[str, Any]) -> Any:
    """An object holding a row just written with these values, bound to no session (the response
    of a redemption that committed on its own). Its attributes are put in place as a load does,
    without the constructor's per-attribute events."""
    mapper = model.__mapper__
    if not mapper.configured:
        configure_mappers()  # what the constructor would make sure of (a process that built no app)
    obj = mapper.class_manager.new_instance()
    obj.__dict__.update(values, id=new_id)
    return obj


_INSERTS: dict[tuple[type, tuple[str, ...]], str] = {}  # the statement text per model and columns
