"""PostgreSQL fast path for one posting: a single statement (one round trip) that passes the
idempotency gate, locks the touched balance rows in (account, shard) order, applies the amounts
with the overdraft guard, extends each hash chain and writes the entries.

Why: a posting per transaction is bound by round trips and client CPU; doing the work in one
data-modifying CTE keeps it close to what PostgreSQL itself can commit. The chain hash is the
same SHA-256 the Python path and the verifier compute (`chain.entry_hash`). Posting ids are drawn
from the sequence in blocks so the fingerprint, which includes the id, is known beforehand.
"""
from __future__ import annotations

import collections
import re
import threading
import time
import weakref
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from infra.errors import NotFound
from ledger.models import Account
from ledger.services.chain import canonical_json

ID_BLOCK = 64
SHARD_REFRESH_SECONDS = 60.0

POST_ONE_COLUMNS = ("id", "kind", "reason", "actor_kind", "actor_id", "actor_label", "source_type", "source_id",
                    "meta", "effective_at", "created_at", "idem_scope", "idem_key", "request_digest", "reverses_id")
# Positional driver placeholders. Arrays and the metadata travel as text literals cast by the
# server: the driver's per-call list and JSON adaptation would cost more than the statement.
POST_ONE = ("SELECT inserted, locked, updated, after, short FROM ledger_post_one("
            + ", ".join(["%s::jsonb" if c == "meta" else "%s" for c in POST_ONE_COLUMNS])
            + ", %s, %s::bigint[], %s::smallint[], %s::bigint[])")


class _EngineState:
    def __init__(self) -> None:
        self.ids: collections.deque[int] = collections.deque()
        self.sharded: dict[int, int] = {}
        self.loaded_at = 0.0
        self.lock = threading.Lock()


_state: weakref.WeakKeyDictionary[Engine, _EngineState] = weakref.WeakKeyDictionary()


def _engine_state(session: Session) -> _EngineState:
    bind = session.get_bind()
    return _state.setdefault(getattr(bind, "engine", bind), _EngineState())  # type: ignore[arg-type]


def next_posting_id(session: Session) -> int:
    state = _engine_state(session)
    with state.lock:
        if not state.ids:
            rows = session.execute(text("SELECT nextval('postings_id_seq') FROM generate_series(1, :n)"),
                                   {"n": ID_BLOCK}).scalars().all()
            state.ids.extend(rows)
        return state.ids.popleft()


def sharded_accounts(session: Session) -> dict[int, int]:
    """Shard counts of the multi-shard (system) accounts, for both posting paths and every
    dialect; every other account has one shard. Refreshed every minute: an account created since
    uses its shard 0 meanwhile, which is valid."""
    state = _engine_state(session)
    if session.get_bind().dialect.name != "postgresql":
        # SQLite reuses the ids of rolled-back rows, so a cached id could name another account;
        # PostgreSQL sequences never give an id twice. The query is tiny: system accounts only.
        return {r.id: r.shard_count for r in session.execute(
            select(Account.id, Account.shard_count).where(Account.shard_count > 1))}
    with state.lock:
        stale = time.monotonic() - state.loaded_at > SHARD_REFRESH_SECONDS
    if stale:
        rows = session.execute(select(Account.id, Account.shard_count).where(Account.shard_count > 1)).all()
        with state.lock:
            state.sharded = {r.id: r.shard_count for r in rows}
            state.loaded_at = time.monotonic()
    return state.sharded


def post_one(session: Session, row: dict[str, Any], fingerprint: str, legs: list[tuple[int, int, int]]) -> dict[str, Any]:
    """Call `ledger_post_one` (migration 0004) on the session's connection, in its transaction.
    `legs` are (account, shard, amount). Returns the counts, balances after and any short leg.

    The driver is called directly: for one small statement SQLAlchemy's execution machinery
    would cost as much client time as the statement costs the server."""
    params = [canonical_json(row["meta"]) if c == "meta" else row[c] for c in POST_ONE_COLUMNS]
    params += [fingerprint] + ["{" + ",".join(str(leg[i]) for leg in legs) + "}" for i in range(3)]
    inserted, locked, updated, after, short = _raw(session, POST_ONE, params, fetch=True)[0]
    if inserted and locked != len(legs):
        raise NotFound("Account not found.", code="account_not_found",
                       details={"account_id": sorted({a for a, _s, _n in legs})})
    return {"inserted": inserted, "locked": locked, "updated": updated, "after": after, "short": short}


# Batches on PostgreSQL: each step is one statement over arrays, so its text stays short (parsed and
# prepared once) however many rows it carries, instead of a multi-VALUES statement of thousands of
# placeholders that the driver must parse on every call.
POSTING_COLUMNS = ("kind", "reason", "actor_kind", "actor_id", "actor_label", "source_type", "source_id", "meta",
                   "effective_at", "created_at", "idem_scope", "idem_key", "request_digest", "reverses_id")
POSTING_TYPES = ("text", "text", "text", "bigint", "text", "text", "text", "jsonb", "timestamptz", "timestamptz",
                 "text", "text", "text", "bigint")
INSERT_POSTINGS = text(
    f"INSERT INTO postings ({', '.join(POSTING_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in zip(POSTING_COLUMNS, POSTING_TYPES))
    + ") ON CONFLICT (idem_scope, idem_key) DO NOTHING RETURNING id, idem_key")
ENTRY_COLUMNS = ("posting_id", "account_id", "shard", "seq", "amount", "balance_after", "effective_at", "prev_hash",
                 "hash")
ENTRY_TYPES = ("bigint", "bigint", "smallint", "bigint", "bigint", "bigint", "timestamptz", "text", "text")
INSERT_ENTRIES = text(
    f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in zip(ENTRY_COLUMNS, ENTRY_TYPES)) + ")")
UPDATE_BALANCES = text(
    "UPDATE balances b SET balance = v.balance, last_seq = v.seq, last_hash = v.hash "
    "FROM unnest(CAST(:account_id AS bigint[]), CAST(:shard AS smallint[]), CAST(:balance AS bigint[]), "
    "CAST(:seq AS bigint[]), CAST(:hash AS text[])) AS v(account_id, shard, balance, seq, hash) "
    "WHERE b.account_id = v.account_id AND b.shard = v.shard")


def _columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    return {name: [Jsonb(r[name]) if name == "meta" else r[name] for r in rows] for name in names}


_compiled: dict[Any, str] = {}


def _binary(session: Session, statement: Any, params: dict[str, Any], *, fetch: bool = False) -> list[Any]:
    """Run on the session's own connection (same transaction) with binary parameters: large text
    arrays then need no quoting, which is most of the client's cost for a batch."""
    sql = _compiled.get(statement)
    if sql is None:
        # %(name)b: the driver sends that parameter in binary (a plain %s lets it pick text for lists).
        sql = _compiled[statement] = re.sub(r"%\((\w+)\)s", r"%(\1)b",
                                            str(statement.compile(dialect=session.get_bind().dialect)))
    return _raw(session, sql, params, fetch=fetch)


def _raw(session: Session, sql: str, params: Any, *, fetch: bool = False) -> list[Any]:
    raw = session.connection().connection.driver_connection
    try:
        with raw.cursor() as cursor:
            cursor.execute(sql, params, binary=True)
            return cursor.fetchall() if fetch else []
    except psycopg.errors.IntegrityError as exc:  # same exception types as the rest of the code sees
        raise IntegrityError(sql, None, exc) from exc
    except psycopg.Error as exc:
        raise DBAPIError(sql, None, exc) from exc


LOCK_BALANCES = text(
    "SELECT b.account_id, b.shard, b.balance, b.allow_negative, b.last_seq, b.last_hash FROM balances b "
    "JOIN unnest(CAST(:account_id AS bigint[]), CAST(:shard AS smallint[])) AS w(account_id, shard) "
    "ON b.account_id = w.account_id AND b.shard = w.shard ORDER BY b.account_id, b.shard FOR UPDATE OF b")


def lock_balances(session: Session, wanted: list[tuple[int, int]]) -> list[Any]:
    """Lock the balance shards in (account, shard) order (so that concurrent postings never
    deadlock) and return (account_id, shard, balance, allow_negative, last_seq, last_hash) rows."""
    return _binary(session, LOCK_BALANCES, {"account_id": [a for a, _s in wanted], "shard": [s for _a, s in wanted]},
                   fetch=True)


def insert_postings(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Returns (id, idem_key) of the postings inserted; a key already taken returns nothing."""
    return _binary(session, INSERT_POSTINGS, _columns(rows, POSTING_COLUMNS), fetch=True)


def insert_entries(session: Session, entries: list[dict[str, Any]]) -> None:
    _binary(session, INSERT_ENTRIES, _columns(entries, ENTRY_COLUMNS))


def update_balances(session: Session, changes: list[dict[str, Any]]) -> None:
    _binary(session, UPDATE_BALANCES, _columns(changes, ("account_id", "shard", "balance", "seq", "hash")))
