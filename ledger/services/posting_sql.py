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

ID_BLOCK = 64
SHARD_REFRESH_SECONDS = 60.0

POST_ONE = text("""
WITH p AS (
    INSERT INTO postings (id, kind, reason, actor_kind, actor_id, actor_label, source_type, source_id, meta,
                          effective_at, created_at, idem_scope, idem_key, request_digest, reverses_id)
    VALUES (:id, :kind, :reason, :actor_kind, :actor_id, :actor_label, :source_type, :source_id, :meta,
            :effective_at, :created_at, :idem_scope, :idem_key, :request_digest, :reverses_id)
    ON CONFLICT (idem_scope, idem_key) DO NOTHING
    RETURNING id
), legs AS (
    SELECT * FROM unnest(CAST(:accounts AS bigint[]), CAST(:shards AS smallint[]), CAST(:amounts AS bigint[]))
        AS l(account_id, shard, amount)
), locked AS (
    SELECT b.account_id, b.shard, b.balance, b.last_seq, b.last_hash, b.allow_negative, l.amount
    FROM balances b JOIN legs l ON l.account_id = b.account_id AND l.shard = b.shard
    WHERE EXISTS (SELECT 1 FROM p)
    ORDER BY b.account_id, b.shard
    FOR UPDATE OF b
), upd AS (
    UPDATE balances b
    SET balance = k.balance + k.amount, last_seq = k.last_seq + 1,
        last_hash = encode(sha256(convert_to(
            k.last_hash || '|' || CAST(:fp AS text) || '|' || k.account_id || '|' || k.shard || '|'
            || (k.last_seq + 1) || '|' || k.amount || '|' || (k.balance + k.amount), 'UTF8')), 'hex')
    FROM locked k
    WHERE b.account_id = k.account_id AND b.shard = k.shard
      AND NOT EXISTS (SELECT 1 FROM locked s WHERE NOT (s.allow_negative OR s.balance + s.amount >= 0))
    RETURNING b.account_id, b.shard, b.balance, b.last_seq, b.last_hash, k.last_hash AS prev_hash, k.amount
), ins AS (
    INSERT INTO entries (posting_id, account_id, shard, seq, amount, balance_after, effective_at, prev_hash, hash)
    SELECT :id, account_id, shard, last_seq, amount, balance, :effective_at, prev_hash, last_hash FROM upd
    WHERE (SELECT count(*) FROM upd) = :n
    RETURNING account_id, balance_after
)
SELECT (SELECT count(*) FROM p) AS inserted, (SELECT count(*) FROM locked) AS locked,
       (SELECT count(*) FROM upd) AS updated,
       (SELECT json_agg(json_build_array(account_id, balance_after)) FROM ins) AS after,
       (SELECT json_agg(json_build_array(account_id, balance, amount)) FROM locked
        WHERE NOT (allow_negative OR balance + amount >= 0)) AS short
-- A short leg stops every leg: no balance moves unless the whole posting can.
""")


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
    """Run the statement. `legs` are (account, shard, amount). Returns the counts and balances."""
    result = session.execute(POST_ONE, {
        **row, "meta": Jsonb(row["meta"]), "fp": fingerprint, "n": len(legs),
        "accounts": [a for a, _s, _n in legs], "shards": [s for _a, s, _n in legs],
        "amounts": [n for _a, _s, n in legs],
    }).one()
    if result.inserted and result.locked != len(legs):
        raise NotFound("Account not found.", code="account_not_found",
                       details={"account_id": sorted({a for a, _s, _n in legs})})
    return dict(result._mapping)


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
    raw = session.connection().connection.driver_connection
    sql = _compiled.get(statement)
    if sql is None:
        sql = _compiled[statement] = str(statement.compile(dialect=session.get_bind().dialect))
    try:
        with raw.cursor() as cursor:
            cursor.execute(sql, params, binary=True)
            return cursor.fetchall() if fetch else []
    except psycopg.errors.IntegrityError as exc:  # same exception types as the rest of the code sees
        raise IntegrityError(sql, None, exc) from exc
    except psycopg.Error as exc:
        raise DBAPIError(sql, None, exc) from exc


def insert_postings(session: Session, rows: list[dict[str, Any]]) -> list[Any]:
    return [_Row(*r) for r in _binary(session, INSERT_POSTINGS, _columns(rows, POSTING_COLUMNS), fetch=True)]


def insert_entries(session: Session, entries: list[dict[str, Any]]) -> None:
    _binary(session, INSERT_ENTRIES, _columns(entries, ENTRY_COLUMNS))


def update_balances(session: Session, changes: list[dict[str, Any]]) -> None:
    _binary(session, UPDATE_BALANCES, _columns(changes, ("account_id", "shard", "balance", "seq", "hash")))


class _Row(tuple):  # noqa: SLOT000
    """(id, idem_key) as returned by INSERT_POSTINGS, readable by name like SQLAlchemy rows."""

    def __new__(cls, id_: int, idem_key: str) -> "_Row":
        return super().__new__(cls, (id_, idem_key))

    @property
    def id(self) -> int:
        return self[0]

    @property
    def idem_key(self) -> str:
        return self[1]
