"""PostgreSQL paths of the posting engine.

A single posting is one call of `ledger_post_one` (migration 0004): idempotency gate, locks,
overdraft guard, chain hashes, balances and entries in one round trip. A batch is a handful of
statements over arrays, whatever its size. Both run on the driver (`infra.driver`): for these few
statements SQLAlchemy's execution layer would cost as much client time as the server's work. The
chain hash is the same SHA-256 the Python path and the verifier compute (`chain.entry_hash`);
posting ids are drawn from the sequence in blocks so the fingerprint, which includes the id, is
known beforehand.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import struct
import threading
import time
import weakref
from typing import Any, NamedTuple

import psycopg
from psycopg.adapt import Dumper, PyFormat
from psycopg.pq import Format
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from infra.driver import execute
from infra.errors import NotFound, sqlstate
from ledger.models import Account

ID_BLOCK = 64
INSUFFICIENT, NOT_FOUND = "JY001", "JY002"  # SQLSTATEs raised by ledger_post_one
SHARD_REFRESH_SECONDS = 60.0

POST_ONE_COLUMNS = ("id", "kind", "reason", "actor_kind", "actor_id", "actor_label", "source_type", "source_id",
                    "meta", "effective_at", "created_at", "idem_scope", "idem_key", "request_digest", "reverses_id")
# Positional driver placeholders. Arrays and the metadata travel as text literals cast by the
# server: the driver's per-call list and JSON adaptation would cost more than the statement.
POST_ONE = ("SELECT inserted, after FROM ledger_post_one("
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


SHARDED_ACCOUNTS = select(Account.id, Account.shard_count).where(Account.shard_count > 1)


def sharded_accounts(session: Session) -> dict[int, int]:
    """Shard counts of the multi-shard (system) accounts, for both posting paths and every
    dialect; every other account has one shard. Refreshed every minute: an account created since
    uses its shard 0 meanwhile, which is valid."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        # SQLite reuses the ids of rolled-back rows, so a cached id could name another account;
        # PostgreSQL sequences never give an id twice. The query is tiny: system accounts only.
        return dict(session.execute(SHARDED_ACCOUNTS).all())
    state = _state.setdefault(getattr(bind, "engine", bind), _EngineState())  # type: ignore[arg-type]
    if time.monotonic() - state.loaded_at > SHARD_REFRESH_SECONDS:
        sharded = dict(session.execute(SHARDED_ACCOUNTS).all())
        with state.lock:
            state.sharded, state.loaded_at = sharded, time.monotonic()
    return state.sharded


def post_one_params(row: dict[str, Any], fingerprint: str, legs: list[tuple[int, int, int]]) -> list[Any]:
    """The parameters of `POST_ONE` for a posting row, its fingerprint and its ordered legs."""
    params = [row["meta_json"] if c == "meta" else row[c] for c in POST_ONE_COLUMNS]
    return params + [fingerprint] + [array_literal([leg[i] for leg in legs], "bigint") for i in range(3)]


def post_one(session: Session, params: list[Any]) -> dict[str, Any]:
    """Call `ledger_post_one` (migration 0004) on the session's connection, in its transaction (or
    as a transaction of its own on an autocommit connection: the statement is atomic; post_many
    and every multi-statement service need a real transaction). `params`: `post_one_params`, whose
    legs are (account, shard or -n for any free one of n shards, amount). Returns `inserted` (0 for a
    replay) and `after` (balances after, in leg order) or `short` ([account, balance, amount] of the legs the
    balance does not cover; the statement, and so the transaction, has then failed).

    The driver is called directly: for one small statement SQLAlchemy's execution machinery
    would cost as much client time as the statement costs the server."""
    try:
        inserted, after = _raw(session, POST_ONE, params, fetch=True)[0]
    except DBAPIError as exc:
        state, detail = sqlstate(exc), getattr(getattr(exc.orig, "diag", None), "message_detail", None)
        if state == INSUFFICIENT:
            return {"inserted": 1, "short": json.loads(detail or "[]")}
        if state == NOT_FOUND:
            raise NotFound("Account not found.", code="account_not_found",
                           details={"account_id": json.loads(detail or "[]")}) from None
        raise
    return {"inserted": inserted, "after": after, "short": None}


# Batches on PostgreSQL: each step is one statement over arrays, so its text stays short (parsed and
# prepared once) however many rows it carries, instead of a multi-VALUES statement of thousands of
# placeholders that the driver must parse on every call. Each array travels as one array literal
# built here with str.join: the driver's per-element adaptation would cost more than the server's
# whole insert.
POSTING_COLUMNS = ("kind", "reason", "source_type", "source_id", "meta", "effective_at", "idem_key", "request_digest",
                   "reverses_id")
POSTING_TYPES = ("text", "text", "text", "text", "jsonb", "timestamptz", "text", "text", "bigint")
# What a batch shares: one actor, one idempotency scope, one recording time (scalars, not arrays).
POSTING_SHARED = ("actor_kind", "actor_id", "actor_label", "created_at", "idem_scope")
# `ledger_insert_postings` (migration 0017): a plain insert, and ON CONFLICT DO NOTHING only when a
# key clashes (speculative insertion of every row cost a batch about a third of this statement).
INSERT_POSTINGS = ("SELECT out_id, out_key FROM ledger_insert_postings(%s, %s::bigint, %s, %s::timestamptz, %s, "
                   + ", ".join(f"%s::{t}[]" for t in POSTING_TYPES) + ")")
ENTRY_COLUMNS = ("posting_id", "account_id", "shard", "seq", "amount", "balance_after", "effective_at", "hash")
ENTRY_TYPES = ("bigint", "bigint", "smallint", "bigint", "bigint", "bigint", "timestamptz", "text")
BALANCE_COLUMNS = ("account_id", "shard", "balance", "seq", "hash")
BALANCE_TYPES = ("bigint", "smallint", "bigint", "bigint", "text")


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: list[Any], sql_type: str) -> str:
    """A PostgreSQL array literal: numbers bare, text (JSON text included) and times double-quoted
    with backslash escapes, None as NULL."""
    if sql_type in ("bigint", "smallint"):
        if None in values:
            return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"
        return "{" + ",".join(map(str, values)) + "}"
    if sql_type == "timestamptz":
        return "{" + ",".join(time_literals(values)) + "}"
    if not values:
        return "{}"
    nulls = values.count(None)
    if nulls == len(values):
        return "{" + ",".join(["NULL"] * nulls) + "}"
    if not nulls:
        # The common case, done by C string methods: join on NUL (which PostgreSQL text cannot
        # hold, so it cannot occur in a value that would be accepted) and, when nothing needs a
        # backslash, swap the NULs for the quote-comma-quote between elements.
        joined = "\x00".join(values)
        if '"' not in joined and "\\" not in joined and joined.count("\x00") == len(values) - 1:
            return '{"' + joined.replace("\x00", '","') + '"}'
    return "{" + ",".join("NULL" if v is None else _quoted(v) for v in values) + "}"


class HexDigests(bytes):
    """A text[] of 64-character hex digests (chain hashes, request digests) in PostgreSQL's binary
    array format. The server takes each element as it comes; an array literal it parses character
    by character, about a microsecond per digest, and a batch sends four thousand of them, half
    while its balance rows are held."""


class _PreparedBinary(Dumper):
    """Sends bytes already in PostgreSQL's binary format as they are (subclasses name the type)."""

    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return obj  # type: ignore[no-any-return]


class _HexDigestsDumper(_PreparedBinary):
    oid = 1009  # text[]


psycopg.adapters.register_dumper(HexDigests, _HexDigestsDumper)

# Digests are joined with this between them: each element's length (64) in the binary format.
DIGEST_SEP = "\x00\x00\x00\x40"
_ARRAY_HEADER = struct.Struct(">iiIii")  # dimensions, has-nulls flag, element type, length, lower bound


def hex_digests(joined: str) -> HexDigests:
    """`joined`: 64-character hex digests joined by DIGEST_SEP (built as fragments, joined at the end)."""
    if not joined:
        return HexDigests(_ARRAY_HEADER.pack(0, 0, 25, 0, 0)[:12])
    n, rest = divmod(len(joined) + len(DIGEST_SEP), 64 + len(DIGEST_SEP))
    if rest or not joined.isascii():
        raise ValueError("not a list of 64-character hex digests")
    return HexDigests(_ARRAY_HEADER.pack(1, 0, 25, n, 1) + (DIGEST_SEP + joined).encode("ascii"))


class Timestamps(bytes):
    """A timestamptz[] in PostgreSQL's binary array format: each element is its microseconds since
    2000-01-01 UTC, which the server takes as it comes instead of parsing an ISO text per element."""


class _TimestampsDumper(_PreparedBinary):
    oid = 1185  # timestamptz[]


psycopg.adapters.register_dumper(Timestamps, _TimestampsDumper)
_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
_MICROSECOND = dt.timedelta(microseconds=1)
_TIME_ELEMENT = struct.Struct(">iq")  # length (8), microseconds


def time_elements(values: list[dt.datetime]) -> list[str]:
    """Time-zone-aware times as elements of a binary timestamptz[] (as latin-1 text, so that they
    join like the other fragments; fixed width, so with no separator). A batch mostly shares one
    time: each distinct one is made once."""
    seen: dict[dt.datetime, str] = {}
    out = []
    for v in values:
        element = seen.get(v)
        if element is None:
            element = seen[v] = _TIME_ELEMENT.pack(8, (v - _PG_EPOCH) // _MICROSECOND).decode("latin-1")
        out.append(element)
    return out


def timestamps(joined: str) -> Timestamps:
    """`joined`: elements from time_elements, concatenated."""
    n, rest = divmod(len(joined), _TIME_ELEMENT.size)
    if rest:
        raise ValueError("not a list of time elements")
    if not n:
        return Timestamps(_ARRAY_HEADER.pack(0, 0, 1184, 0, 0)[:12])
    return Timestamps(_ARRAY_HEADER.pack(1, 0, 1184, n, 1) + joined.encode("latin-1"))


def _arrays(rows: list[dict[str, Any]], names: tuple[str, ...],
            types: tuple[str, ...]) -> list[str | HexDigests | Timestamps]:
    # Metadata goes as the JSON text the posting row already holds (`meta_json`), quoted like text.
    return [array_literal([r["meta_json"] for r in rows], "text") if name == "meta" else
            hex_digests(DIGEST_SEP.join([r[name] for r in rows])) if name == "request_digest" else
            timestamps("".join(time_elements([r[name] for r in rows]))) if name == "effective_at" else
            array_literal([r[name] for r in rows], sql_type) for name, sql_type in zip(names, types)]


def _raw(session: Session, sql: str, params: Any, *, fetch: bool = False) -> list[Any]:
    return execute(session, sql, params, fetch=fetch, binary=True)


def _binary_arrays(session: Session) -> None:
    """Make sure the session's connection sends HexDigests and Timestamps as what they are: one
    opened before this module was imported does not see the global registration (it would send
    them as bytea, which the statements refuse)."""
    adapters = session.connection().connection.driver_connection.adapters
    if adapters.get_dumper(HexDigests, PyFormat.AUTO) is not _HexDigestsDumper:
        adapters.register_dumper(HexDigests, _HexDigestsDumper)
        adapters.register_dumper(Timestamps, _TimestampsDumper)


CLAIM_FREE_SHARD = ("SELECT shard FROM balances WHERE account_id = %s "
                    "ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED")
CLAIM_ANY_SHARD = "SELECT shard FROM balances WHERE account_id = %s ORDER BY random() LIMIT 1 FOR UPDATE"


def claim_free_shards(session: Session, account_ids: list[int]) -> dict[int, int]:
    """Lock one shard of each sharded account, preferring shards no other transaction holds;
    wait for one only when all are busy. Call before locking any other balance row."""
    chosen: dict[int, int] = {}
    for account_id in account_ids:
        rows = _raw(session, CLAIM_FREE_SHARD, [account_id], fetch=True) or \
            _raw(session, CLAIM_ANY_SHARD, [account_id], fetch=True)
        if rows:
            chosen[account_id] = rows[0][0]
    return chosen


# Each wanted row through the primary key, in the order given (callers sort it): a plain join with
# the unnested arrays is planned as a hash join that reads and hashes the whole balances table
# (about three times the cost for a batch of a thousand of ten thousand rows). OFFSET 0 keeps the
# LATERAL subquery from being merged into such a join.
_BALANCE_ROW = ("SELECT b.account_id, b.shard, b.balance, b.allow_negative, b.last_seq, b.last_hash FROM balances b "
                "WHERE b.account_id = w.account_id AND b.shard = w.shard OFFSET 0")
_EACH_WANTED = "SELECT b.* FROM unnest(%s::bigint[], %s::smallint[]) AS w(account_id, shard) CROSS JOIN LATERAL "
READ_BALANCES = _EACH_WANTED + "(" + _BALANCE_ROW + ") AS b"
LOCK_BALANCES = _EACH_WANTED + "(" + _BALANCE_ROW + " FOR UPDATE) AS b"


def _shard_arrays(wanted: list[tuple[int, int]]) -> list[str]:
    return [array_literal([a for a, _s in wanted], "bigint"), array_literal([s for _a, s in wanted], "smallint")]


def read_balances(session: Session, wanted: list[tuple[int, int]]) -> list[Any]:
    """The same rows as lock_balances, unlocked: what a batch is worked out from before it locks."""
    return _raw(session, READ_BALANCES, _shard_arrays(wanted), fetch=True)


def lock_balances(session: Session, wanted: list[tuple[int, int]]) -> list[Any]:
    """Lock the balance shards in the order given, which must be (account, shard) order (so that
    concurrent postings never deadlock), and return (account_id, shard, balance, allow_negative, last_seq, last_hash) rows."""
    return _raw(session, LOCK_BALANCES, _shard_arrays(wanted), fetch=True)


def insert_postings(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Returns (id, idem_key) of the postings inserted; a key already taken returns nothing. The
    rows share their actor, idempotency scope and recording time (`post_many` makes them so)."""
    _binary_arrays(session)
    return _raw(session, INSERT_POSTINGS, [rows[0][name] for name in POSTING_SHARED]
                + _arrays(rows, POSTING_COLUMNS, POSTING_TYPES), fetch=True)


# The new balances and the entries, by `ledger_write_chains` (migration 0012), which reaches each
# balance row by its primary key.
WRITE_BATCH = "SELECT ledger_write_chains(" + ", ".join(
    [f"%s::{t}[]" for t in BALANCE_TYPES] + [f"%s::{t}[]" for t in ENTRY_TYPES]) + ")"


class ChainFragments(NamedTuple):
    """One balance shard's part of the batch write, as array-literal elements already joined: its
    entries (one string per ENTRY_COLUMNS column) and its new balance row (BALANCE_COLUMNS)."""

    entries: tuple[str, ...]
    balance: tuple[str, ...]


def time_literals(values: list[Any]) -> list[str]:
    """Timestamps as array-literal elements, quoted, None as NULL (a batch mostly shares one time:
    formatted once)."""
    seen: dict[Any, str] = {}
    out = []
    for v in values:
        text_value = seen.get(v)
        if text_value is None:
            text_value = seen[v] = "NULL" if v is None else '"' + v.isoformat() + '"'
        out.append(text_value)
    return out


def chain_fragments(key: tuple[int, int], chain: list[tuple[int, int, int]], worked: list[tuple[int, int, str]],
                    posting_ids: list[str], effective: list[str]) -> ChainFragments:
    """A worked chain (legs (posting index, leg index, amount); worked (seq, balance after, hash))
    as its fragments; hashes joined by DIGEST_SEP (they travel as HexDigests), times (`effective`:
    time_elements, per posting) concatenated (they travel as Timestamps)."""
    account, shard = str(key[0]), str(key[1])
    n = len(chain)
    if n == 1:  # most participants have one leg in a batch: no joins
        (p, _i, amount), (seq, balance, digest) = chain[0], worked[0]
        balance_text, seq_text = str(balance), str(seq)
        return ChainFragments((posting_ids[p], account, shard, seq_text, str(amount), balance_text, effective[p],
                               digest), (account, shard, balance_text, seq_text, digest))
    seqs, balances, hashes = zip(*worked)
    entries = (",".join([posting_ids[p] for p, _i, _a in chain]), ",".join([account] * n), ",".join([shard] * n),
               ",".join(map(str, seqs)), ",".join([str(a) for _p, _i, a in chain]), ",".join(map(str, balances)),
               "".join([effective[p] for p, _i, _a in chain]), DIGEST_SEP.join(hashes))
    return ChainFragments(entries, (account, shard, str(balances[-1]), str(seqs[-1]), hashes[-1]))


def write_fragments(session: Session, chains: list[ChainFragments]) -> None:
    """The new balances and the entries of every chain in one statement (one round trip while the
    rows are held): the literals are only joined here, column by column (zip transposes in C)."""
    if not chains:
        return
    _binary_arrays(session)
    balances = list(zip(*[c.balance for c in chains]))
    entries = list(zip(*[c.entries for c in chains]))
    _raw(session, WRITE_BATCH, [
        *("{" + ",".join(column) + "}" for column in balances[:-1]),
        hex_digests(DIGEST_SEP.join(balances[-1])),
        *("{" + ",".join(column) + "}" for column in entries[:-2]),
        timestamps("".join(entries[-2])),
        hex_digests(DIGEST_SEP.join(entries[-1]))])
