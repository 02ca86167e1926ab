"""Set-based statements for the scoring bulk paths: one statement per table per batch.

Why: flushing thousands of ORM objects (and parsing statements with thousands of placeholders)
cost far more than the work itself. On PostgreSQL each write is one UPDATE ... FROM unnest(arrays)
or INSERT ... SELECT FROM unnest(arrays) on the session's own connection, so its text stays short
and is prepared once, with every parameter sent in binary (`%b`: psycopg's default would send text
and JSON arrays as text, escaping every quote of every element); on SQLite (the
embedded default) it is an executemany of the same change. Callers flush the session first and
expire what they changed (`expire`), so ORM objects never show stale values."""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Column, Table, and_, any_, bindparam, insert, select, text, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from infra.db import dialect_insert
from infra.driver import execute
from scoring.models import AwardTally, Contribution, ContributionMember

TallyKey = tuple[int, str, str]  # (participant id, indicator code, period)

_PG = postgresql.dialect()
_statements: dict[tuple[Any, ...], Any] = {}
_compiled: dict[Any, str] = {}


def _binary(session: Session, statement: Any, params: dict[str, Any], *, fetch: bool = False) -> list[Any]:
    """Run a PostgreSQL statement on the session's connection (same transaction), parameters and
    results in binary. Driver errors surface as SQLAlchemy's, like everywhere else."""
    sql = _compiled.get(statement)
    if sql is None:
        sql = _compiled[statement] = re.sub(r"%\((\w+)\)s", r"%(\1)b", str(statement.compile(dialect=_PG)))
    return execute(session, sql, params, fetch=fetch, binary=True)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def any_of(column: Any, values: Sequence[Any], session: Session) -> Any:
    """`column = ANY(array)` on PostgreSQL: one parameter, not thousands (each of which the driver
    would parse on every call); IN (...) elsewhere."""
    if is_postgres(session):
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(list(values))


@functools.cache
def _pg_type(column: Column[Any]) -> str:
    return str(column.type.compile(dialect=_PG))


def _value(column: Column[Any], value: Any) -> Any:
    return Jsonb(value) if value is not None and _pg_type(column) == "JSONB" else value


def _unnest(table: Table, names: Sequence[str]) -> str:
    return ("unnest(" + ", ".join(f"CAST(:a_{n} AS {_pg_type(table.c[n])}[])" for n in names)
            + ") AS v(" + ", ".join(names) + ")")


def _arrays(table: Table, columns: dict[str, list[Any]], constants: dict[str, Any]) -> dict[str, Any]:
    params = {f"a_{n}": ([Jsonb(v) if v is not None else None for v in values]
                         if _pg_type(table.c[n]) == "JSONB" else values) for n, values in columns.items()}
    params.update({f"c_{n}": _value(table.c[n], v) for n, v in constants.items()})
    return params


def _rows(columns: dict[str, list[Any]], prefix: str = "") -> list[dict[str, Any]]:
    names = list(columns)
    return [{prefix + n: v for n, v in zip(names, values)} for values in zip(*columns.values())]


def update_rows(session: Session, table: Table, keys: Sequence[str], columns: dict[str, list[Any]],
                constants: dict[str, Any] | None = None) -> None:
    """UPDATE `table` row by row: `columns` holds the key columns and the new values, one list per
    column; `constants` are values shared by every row."""
    constants = constants or {}
    if not columns or not next(iter(columns.values())):
        return
    sets = [n for n in columns if n not in keys]
    if is_postgres(session):
        cache_key = ("update", table.name, tuple(keys), tuple(columns), tuple(constants))
        stmt = _statements.get(cache_key)
        if stmt is None:
            assignments = [f"{n} = v.{n}" for n in sets] + [
                f"{n} = CAST(:c_{n} AS {_pg_type(table.c[n])})" for n in constants]
            stmt = _statements[cache_key] = text(
                f"UPDATE {table.name} t SET {', '.join(assignments)} FROM {_unnest(table, list(columns))} "
                f"WHERE {' AND '.join(f't.{k} = v.{k}' for k in keys)}")
        _binary(session, stmt, _arrays(table, columns, constants))
        return
    stmt = (update(table).where(and_(*(table.c[k] == bindparam(f"k_{k}") for k in keys)))
            .values({**{n: bindparam(f"k_{n}") for n in sets}, **constants}))
    session.execute(stmt, _rows(columns, "k_"))


def insert_rows(session: Session, table: Table, columns: dict[str, list[Any]],
                constants: dict[str, Any] | None = None) -> None:
    """INSERT one row per position of the `columns` lists, plus `constants` in every row."""
    constants = constants or {}
    if not columns or not next(iter(columns.values())):
        return
    if is_postgres(session):
        cache_key = ("insert", table.name, tuple(columns), tuple(constants))
        stmt = _statements.get(cache_key)
        if stmt is None:
            names = list(columns) + list(constants)
            values = [f"v.{n}" for n in columns] + [f"CAST(:c_{n} AS {_pg_type(table.c[n])})" for n in constants]
            stmt = _statements[cache_key] = text(
                f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(values)} "
                f"FROM {_unnest(table, list(columns))}")
        _binary(session, stmt, _arrays(table, columns, constants))
        return
    session.execute(insert(table), [{**row, **constants} for row in _rows(columns)])


_TALLIES: Table = AwardTally.__table__  # type: ignore[assignment]
_TALLY_KEYS = ("participant_id", "indicator_code", "period")


@functools.cache
def _lock_tallies_pg() -> Any:
    """Built on first use: foreign-key column types are known only once every model is loaded.
    One statement creates the missing tallies and locks the existing ones (the no-op DO UPDATE),
    row by row in key order, and returns the current points of all: a quarter cheaper than an
    INSERT ... DO NOTHING followed by a SELECT ... FOR UPDATE."""
    return text(
        f"INSERT INTO award_tallies AS t (participant_id, indicator_code, period, points) "
        f"SELECT v.participant_id, v.indicator_code, v.period, 0 FROM {_unnest(_TALLIES, _TALLY_KEYS)} "
        f"ORDER BY 1, 2, 3 ON CONFLICT (participant_id, indicator_code, period) DO UPDATE SET points = t.points "
        f"RETURNING t.participant_id, t.indicator_code, t.period, t.points")


def lock_tallies(session: Session, keys: Iterable[TallyKey]) -> dict[TallyKey, int]:
    """Create the missing tallies and lock them all in one fixed order, so two verifiers never
    deadlock and a cap is applied to points nobody else is changing meanwhile."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    if is_postgres(session):
        params = {f"a_{n}": [k[i] for k in ordered] for i, n in enumerate(_TALLY_KEYS)}
        rows = _binary(session, _lock_tallies_pg(), params, fetch=True)
        return {(r[0], r[1], r[2]): r[3] for r in rows}
    session.execute(dialect_insert(session)(_TALLIES).on_conflict_do_nothing(),
                    [{"participant_id": p, "indicator_code": i, "period": d, "points": 0} for p, i, d in ordered])
    rows = session.execute(
        select(_TALLIES.c.participant_id, _TALLIES.c.indicator_code, _TALLIES.c.period, _TALLIES.c.points)
        .where(tuple_(_TALLIES.c.participant_id, _TALLIES.c.indicator_code, _TALLIES.c.period).in_(ordered))
        .order_by(_TALLIES.c.participant_id, _TALLIES.c.indicator_code, _TALLIES.c.period)
        .with_for_update()).all()
    return {(r[0], r[1], r[2]): r[3] for r in rows}


# Tallies by key, in key order (the locking order), through the unique index; what a conflict does
# with the points follows.
_UPSERT_TALLIES_PG = (
    "INSERT INTO award_tallies AS t (participant_id, indicator_code, period, points) "
    "SELECT v.participant_id, v.indicator_code, v.period, v.points "
    "FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[], %s::int[]) AS v(participant_id, indicator_code, period, points) "
    "ORDER BY 1, 2, 3 ON CONFLICT (participant_id, indicator_code, period) DO UPDATE SET ")
_ADD_TO_TALLIES_PG = (_UPSERT_TALLIES_PG + "points = t.points + excluded.points "
                      "RETURNING t.participant_id, t.indicator_code, t.period, t.points")


def _tally_arrays(keys: list[TallyKey], points: dict[TallyKey, int]) -> tuple[str, str, str, str]:
    return (int_array([k[0] for k in keys]), text_array([k[1] for k in keys]), text_array([k[2] for k in keys]),
            int_array([points[k] for k in keys]))


def add_to_tallies(session: Session, deltas: dict[TallyKey, int], lock_only: Iterable[TallyKey] = ()) -> dict[TallyKey, int]:
    """Add `deltas` to their tallies and lock those and `lock_only` (creating the missing ones),
    all in one fixed order as `lock_tallies` does; returns every one's points afterwards. On
    PostgreSQL one statement: points that need no reading under the lock (work under an
    indicator without month or year cap) cost no second write."""
    wanted = dict.fromkeys(lock_only, 0)
    wanted.update(deltas)
    ordered = sorted(wanted)
    if not ordered:
        return {}
    if is_postgres(session):
        rows = execute(session, _ADD_TO_TALLIES_PG, _tally_arrays(ordered, wanted), fetch=True)
        return {(r[0], r[1], r[2]): r[3] for r in rows}
    tallies = lock_tallies(session, ordered)
    changed = [k for k in ordered if wanted[k]]
    for k in changed:
        tallies[k] += wanted[k]
    write_tallies(session, tallies, changed)
    return tallies


def int_array(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal of integers (None as NULL), for a `%s::bigint[]` parameter:
    one string, where the driver's array adaptation costs a Python call per element."""
    values = list(values)
    if None in values:
        return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"
    return "{" + ",".join(map(str, values)) + "}"


def text_array(values: Iterable[str | None]) -> str:
    """A PostgreSQL array literal of text, quoted and escaped (None as NULL)."""
    return "{" + ",".join("NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                          for v in values) + "}"


# The tallies written are locked already (`lock_tallies`, `add_to_tallies`). Their keys lead the
# write to each row through the unique index: an UPDATE ... FROM unnest joined them by hashing the
# whole table (it holds every participant, indicator and period ever), read once per batch.
_WRITE_TALLIES_PG = _UPSERT_TALLIES_PG + "points = excluded.points"


def write_tallies(session: Session, tallies: dict[TallyKey, int], changed: Iterable[TallyKey]) -> None:
    keys = sorted(set(changed))
    if not keys:
        return
    if is_postgres(session):
        execute(session, _WRITE_TALLIES_PG, _tally_arrays(keys, tallies))
        return
    update_rows(session, _TALLIES, _TALLY_KEYS, {
        "participant_id": [k[0] for k in keys], "indicator_code": [k[1] for k in keys],
        "period": [k[2] for k in keys], "points": [tallies[k] for k in keys]})


def expire(session: Session, contribution_ids: Iterable[int]) -> None:
    """Expire the contributions (with their relationships) and members this session holds, after
    statements that changed their rows behind the ORM's back. Looks at identity keys only, so
    nothing is loaded; a fresh session holds none and this costs nothing."""
    wanted = set(contribution_ids)
    for key, obj in list(session.identity_map.items()):
        cls, ident = key[0], key[1]
        if (cls is Contribution and ident[0] in wanted) or (cls is ContributionMember and ident[0] in wanted):
            session.expire(obj)
