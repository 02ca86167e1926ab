"""The posting engine: the only code that writes entries and balances.

Every posting goes the same way: the idempotency gate (INSERT ... ON CONFLICT DO NOTHING on the
caller-scoped key), then row locks on every balance shard touched, system-account shards first
(a free one, SKIP LOCKED) and then in (account, shard) order so concurrent postings never
deadlock, then the new balances, chain hashes and entries. On PostgreSQL a single posting is one
call of `ledger_post_one` (`posting_sql`); a batch works its chains out from an unlocked read and,
under the locks, redoes only the shards that moved and writes balances and entries in one
statement. SQLite, one writer at a time, locks first and writes after.
"""
from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, tuple_, update
from sqlalchemy.orm import Session

from infra.auth import Principal
from infra.db import dialect_insert, utcnow
from infra.errors import Conflict, IdempotencyConflict, NotFound, ValidationFailed
from infra.idempotency import stored_key
from ledger.models import POSTING_KINDS, BalanceShard, Entry, Posting
from ledger.services import chains, posting_sql
from ledger.services.chain import BatchCanon, canonical_json, posting_fingerprint, posting_request_digest

MAX_REASON = 500
FUTURE_SKEW = dt.timedelta(minutes=5)


class InsufficientBalance(Conflict):
    """The debit would take a participant below zero. The unit of work must roll back (on
    PostgreSQL the refused statement has already failed the transaction; use a savepoint to
    carry on after one). Its details name only `amount`, as a request does; which account and
    which posting of a batch went short are attributes, for callers, never in the answer (an
    account id the client never sent, and a batch index, were the details' bare numbers)."""

    code = "insufficient_balance"

    # Set by `_insufficient`: the account short, its balance, the leg's (negative) amount, and the
    # posting's place in its batch (0 for a single posting).
    account_id: int | None = None
    balance: int | None = None
    amount: int | None = None
    posting_index: int = 0


@dataclass(frozen=True)
class Leg:
    account_id: int
    amount: int
    shard: int | None = None


@dataclass
class PostingRequest:
    kind: str
    legs: Sequence[Leg]
    reason: str
    idempotency_key: str | None = None
    source_type: str | None = None
    source_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    effective_at: dt.datetime | None = None
    reverses_id: int | None = None

    def digest(self, meta_json: str | None = None, canon: BatchCanon | None = None) -> str:
        """What the caller asked for, to tell a retry from a reused key (`meta_json`: the
        metadata's canonical JSON, when the caller has it already; `canon`: a batch's writer)."""
        return (canon.request_digest if canon is not None else posting_request_digest)(
            self.kind, self.reason.strip(), sorted((leg.account_id, leg.amount) for leg in self.legs),
            self.source_type, self.source_id, meta_json if meta_json is not None else canonical_json(self.meta or {}),
            self.effective_at.isoformat() if self.effective_at else None, self.reverses_id)


@dataclass(frozen=True)
class PostingResult:
    posting_id: int
    replayed: bool
    # account_id -> balance of the touched shard after this posting (participants have one shard)
    balances_after: dict[int, int] = field(default_factory=dict)


def _invalid(index: int, field_name: str, message: str) -> ValidationFailed:
    """A posting refused, naming its field; which posting of a batch is `posting_index`, an
    attribute for the caller, not a detail (a bare number under a field no request has)."""
    refusal = ValidationFailed("The posting is invalid.", details={field_name: [message]})
    refusal.posting_index = index  # type: ignore[attr-defined]
    return refusal


def _validate(index: int, req: PostingRequest, now: dt.datetime) -> None:
    def fail(field_name: str, message: str) -> None:
        raise _invalid(index, field_name, message)

    if req.kind not in POSTING_KINDS:
        fail("kind", f"kind must be one of {', '.join(POSTING_KINDS)}")
    if not req.reason or not req.reason.strip():
        fail("reason", "A reason in words is required.")
    if len(req.reason) > MAX_REASON:
        fail("reason", f"At most {MAX_REASON} characters.")
    if len(req.legs) < 2:
        fail("legs", "A posting needs at least two entries.")
    seen: set[int] = set()
    for leg in req.legs:
        if not isinstance(leg.amount, int) or isinstance(leg.amount, bool) or leg.amount == 0:
            fail("legs", "Amounts are whole, non-zero points.")
        if leg.account_id in seen:
            fail("legs", "An account appears twice in one posting.")
        seen.add(leg.account_id)
    if sum(leg.amount for leg in req.legs) != 0:
        fail("legs", "Entries of a posting must sum to zero.")
    if req.effective_at is not None:
        if req.effective_at.tzinfo is None:
            fail("effective_at", "Give a time zone.")
        if req.effective_at > now + FUTURE_SKEW:
            fail("effective_at", "Effective time cannot be in the future.")
    if (req.kind == "reversal") != (req.reverses_id is not None):
        fail("reverses_id", "A reversal, and only a reversal, names the posting it reverses.")



def _check_meta(index: int, row: dict[str, Any]) -> None:
    """Numbers jsonb would write differently from Python's JSON (1e+16 comes back as
    10000000000000000) would break the chain hash, which is taken over the JSON text: refused.
    The JSON text is scanned first; only a possible exponent or non-finite number costs a walk."""
    text = row["meta_json"]
    if ("e+" in text or "e-" in text or "Infinity" in text or "NaN" in text) and not _stores_as_written(row["meta"]):
        raise _invalid(index, "meta", "Numbers in metadata must be finite and written without an exponent.")


def _stores_as_written(value: Any) -> bool:
    """Whether PostgreSQL's jsonb gives the value back as Python's JSON wrote it, which the chain
    hash (computed on the JSON text) relies on: jsonb rewrites 1e+16 as 10000000000000000."""
    if isinstance(value, float):
        return math.isfinite(value) and "e" not in repr(value)
    if isinstance(value, dict):
        return all(_stores_as_written(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_stores_as_written(v) for v in value)
    return True


def post(session: Session, actor: Principal, request: PostingRequest, *, idem_scope: str | None = None) -> PostingResult:
    """One posting. On PostgreSQL it is a single statement (see `posting_sql`); elsewhere, and for
    batches, the general path below."""
    if session.get_bind().dialect.name != "postgresql":
        return post_many(session, actor, [request], idem_scope=idem_scope)[0]
    row, fingerprint, legs = single_statement(session, actor, request, idem_scope=idem_scope)
    outcome = posting_sql.post_one(session, posting_sql.post_one_params(row, fingerprint, legs))
    if not outcome["inserted"]:
        key = row["idem_key"]
        return _replays(session, row["idem_scope"], [key], {key: row["request_digest"]})[key]
    if outcome["short"]:
        account_id, balance, amount = outcome["short"][0]
        raise _insufficient(account_id, balance, amount, 0)
    return PostingResult(posting_id=row["id"], replayed=False,
                         balances_after={leg[0]: balance for leg, balance in zip(legs, outcome["after"])})


def single_statement(session: Session, actor: Principal, request: PostingRequest, *,
                     idem_scope: str | None = None) -> tuple[dict[str, Any], str, list[tuple[int, int, int]]]:
    """What `post` sends to PostgreSQL for one posting, checked and worked out, as
    `posting_sql.post_one_params` takes it: the posting row (with its id), its fingerprint, and its
    legs (account, shard or -n, amount) in the locking order.
    Separate so that `bench/ledger_bench.py` can time the statement alone."""
    now = utcnow()
    _validate(0, request, now)
    scope = idem_scope or f"{actor.kind}:{actor.id}"
    key = stored_key(request.idempotency_key) if request.idempotency_key else f"auto:{uuid.uuid4().hex}"
    row = _row(request, actor, scope, key, now)
    _check_meta(0, row)
    row["id"] = posting_sql.next_posting_id(session)
    sharded = posting_sql.sharded_accounts(session)
    # The locking order, the same on both paths: the legs on sharded (system) accounts first, in
    # account order, then the others by (account, shard). -n: any of the n shards of a sharded
    # account; the statement takes one no one else holds (SKIP LOCKED, never waiting).
    legs = sorted(((leg.account_id, leg.shard if leg.shard is not None else -sharded.get(leg.account_id, 0),
                    leg.amount) for leg in request.legs),
                  key=lambda leg: (leg[0] not in sharded, leg[0], leg[1]))
    return row, posting_fingerprint(row, row["meta_json"]), legs


def _row(req: PostingRequest, actor: Principal, scope: str, key: str, now: dt.datetime,
         canon: BatchCanon | None = None) -> dict[str, Any]:
    meta_json = canon.meta_json(req.meta) if canon is not None else canonical_json(req.meta) if req.meta else "{}"
    return {
        "kind": req.kind, "reason": req.reason.strip(), "actor_kind": actor.kind, "actor_id": actor.id,
        "actor_label": actor.label[:100], "source_type": req.source_type, "source_id": req.source_id,
        "meta": req.meta or {}, "meta_json": meta_json, "effective_at": req.effective_at or now, "created_at": now,
        "idem_scope": scope, "idem_key": key, "request_digest": req.digest(meta_json, canon), "reverses_id": req.reverses_id,
    }


def post_many(session: Session, actor: Principal, requests: Sequence[PostingRequest], *,
              idem_scope: str | None = None) -> list[PostingResult]:
    """Write postings atomically (all or none, with the caller's unit of work)."""
    if not requests:
        return []
    now = utcnow()
    scope = idem_scope or f"{actor.kind}:{actor.id}"
    keys: list[str] = []
    for i, req in enumerate(requests):
        _validate(i, req, now)
        keys.append(stored_key(req.idempotency_key) if req.idempotency_key else f"auto:{uuid.uuid4().hex}")
    if len(set(keys)) != len(keys):
        raise ValidationFailed("Idempotency keys repeat within the batch.",
                               details={"idempotency_key": ["Keys must be unique within a batch."]})

    canon = BatchCanon()
    rows = [_row(req, actor, scope, key, now, canon) for req, key in zip(requests, keys)]
    for i, row in enumerate(rows):
        _check_meta(i, row)

    # 1. Idempotency gate. A duplicate in flight blocks here until the first commits or aborts.
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        inserted = posting_sql.insert_postings(session, rows)
    else:
        table = Posting.__table__
        stmt = dialect_insert(session)(table).on_conflict_do_nothing(index_elements=["idem_scope", "idem_key"])
        inserted = session.execute(stmt.returning(table.c.id, table.c.idem_key),
                                   [{k: v for k, v in r.items() if k != "meta_json"} for r in rows]).all()
    new_ids = {idem_key: posting_id for posting_id, idem_key in inserted}

    results: dict[str, PostingResult] = {}
    replayed_keys = [k for k in keys if k not in new_ids]
    if replayed_keys:
        results.update(_replays(session, scope, replayed_keys, {k: r["request_digest"] for k, r in zip(keys, rows)}))

    fresh = [(req, row, new_ids[row["idem_key"]]) for req, row in zip(requests, rows) if row["idem_key"] in new_ids]
    if fresh:
        results.update(_apply(session, fresh, postgres, canon))
    return [results[k] for k in keys]


def _insufficient(account_id: int, balance: int, amount: int, index: int) -> InsufficientBalance:
    refusal = InsufficientBalance(
        "Not enough points: the balance is %(balance)s, the debit is %(amount)s.", balance=balance, amount=-amount,
        details={"amount": [f"Balance {balance} is less than {-amount}."]})
    refusal.account_id, refusal.balance, refusal.amount, refusal.posting_index = account_id, balance, amount, index
    return refusal


def _replays(session: Session, scope: str, keys: list[str], digests: dict[str, str]) -> dict[str, PostingResult]:
    existing = session.execute(
        select(Posting.id, Posting.idem_key, Posting.request_digest)
        .where(Posting.idem_scope == scope, Posting.idem_key.in_(keys))
    ).all()
    found = {r.idem_key: r for r in existing}
    out: dict[str, PostingResult] = {}
    for key in keys:
        row = found.get(key)
        if row is None:  # cannot happen: the conflict proves it exists and is committed
            raise Conflict("Duplicate request still in flight; retry.", code="in_flight")
        if row.request_digest != digests[key]:
            raise IdempotencyConflict(
                "This idempotency key was already used for a different request.",
                details={"idempotency_key": [f"Key {key!r} was used for posting {row.id} with other content."]})
        out[key] = PostingResult(posting_id=row.id, replayed=True)
    return out


def _apply(session: Session, fresh: list[tuple[PostingRequest, dict[str, Any], int]],
           postgres: bool, canon: BatchCanon) -> dict[str, PostingResult]:
    # Everything that does not depend on the balances is done before any balance row is locked:
    # concurrent batches queue on shared participants, so the locked stretch is what bounds them.
    for _req, row, posting_id in fresh:
        row["id"] = posting_id
    fingerprints = [canon.fingerprint(row, row["meta_json"]) for _req, row, _id in fresh]
    sharded = posting_sql.sharded_accounts(session)
    # One shard per sharded (system) account per call. On PostgreSQL it is one that no other
    # transaction holds (SKIP LOCKED), taken before any other balance lock, so concurrent batches
    # do not queue on a system account; SQLite has one writer at a time anyway.
    any_shard = sorted({leg.account_id for req, _r, _i in fresh for leg in req.legs
                        if leg.shard is None and leg.account_id in sharded})
    held: set[chains.Key] = set()
    if postgres:
        chosen = posting_sql.claim_free_shards(session, any_shard)
        pinned = sorted({(leg.account_id, leg.shard) for req, _r, _i in fresh for leg in req.legs
                         if leg.shard is not None and leg.account_id in sharded})
        if pinned:  # sharded accounts first, as in the single path: then no order can cross
            posting_sql.lock_balances(session, pinned)
        held = {(a, s) for a, s in chosen.items()} | set(pinned)
    else:
        chosen = {a: random.randrange(sharded[a]) for a in any_shard}
    legs = [[(leg.account_id, leg.shard if leg.shard is not None else chosen.get(leg.account_id, 0), leg.amount)
             for leg in req.legs] for req, _r, _i in fresh]

    chain_legs = chains.group(legs)
    if postgres:
        return _write_postgres(session, fresh, chain_legs, fingerprints, held)
    return _write_sqlite(session, fresh, legs, chain_legs, fingerprints)


def _write_postgres(session: Session, fresh: list[tuple[PostingRequest, dict[str, Any], int]],
                    chain_legs: dict[chains.Key, list[chains.ChainLeg]], fingerprints: list[str],
                    held: set[chains.Key]) -> dict[str, PostingResult]:
    """Work every chain out from an unlocked read, with its entries already written as array-literal
    fragments; lock the rows (in order); redo only the shards another transaction moved meanwhile.
    Concurrent batches share participants and queue on each other's row locks, so the time from
    the lock to the commit bounds them all: it holds only the comparison, the few redone chains,
    string joins and the one write statement.

    `held`: shards this transaction has locked already (the system-account shards, taken first
    and never waited for). Their read is final, so their chains (in an award batch, half the
    entries: one system shard with a leg in every posting) are written before the other rows are
    locked, outside the stretch concurrent batches queue on."""
    wanted = sorted(chain_legs)
    posting_ids = [str(posting_id) for _req, _row, posting_id in fresh]
    effective = posting_sql.time_elements([row["effective_at"] for _req, row, _id in fresh])
    after: list[dict[int, int]] = [{} for _ in fresh]
    worked: dict[chains.Key, list[chains.Worked] | chains.Short] = {}
    fragments: dict[chains.Key, posting_sql.ChainFragments] = {}

    def work(key: chains.Key, start: chains.Start) -> None:
        done = worked[key] = chains.work(key, start, chain_legs[key], fingerprints)
        if not isinstance(done, chains.Short):
            fragments[key] = posting_sql.chain_fragments(key, chain_legs[key], done, posting_ids, effective)
            for (p, _i, _amount), leg_done in zip(chain_legs[key], done):
                after[p][key[0]] = leg_done[1]

    read = posting_sql.read_balances(session, wanted)
    seen = chains.starts(read)
    for key in wanted:
        if key in seen:
            work(key, seen[key])
    results = {row["idem_key"]: PostingResult(posting_id=posting_id, replayed=False, balances_after=balances)
               for (_req, row, posting_id), balances in zip(fresh, after)}

    early = [key for key in wanted if key in held]
    # Written early only when all of them are sound: a missing shard or a short leg is reported
    # after the lock, as the first in batch order, exactly as before.
    if early and all(key in fragments for key in early):
        posting_sql.write_fragments(session, [fragments[key] for key in early])
        wanted = [key for key in wanted if key not in held]
    if wanted:
        # The locked rows are compared as they come with the rows read: only a moved one is unpacked.
        read_rows = {(row[0], row[1]): row for row in read}
        locked = posting_sql.lock_balances(session, wanted)
        if len(locked) != len(wanted):
            _refuse_missing(wanted, chains.starts(locked))
        for row in locked:
            if read_rows.get((row[0], row[1])) != row:
                work((row[0], row[1]), chains.start(row))
        _raise_first_short(worked)
        posting_sql.write_fragments(session, [fragments[key] for key in wanted])
    return results


def _refuse_missing(wanted: list[chains.Key], locked: dict[chains.Key, chains.Start]) -> None:
    if len(locked) != len(wanted):
        missing = sorted({a for a, s in wanted if (a, s) not in locked})
        raise NotFound("Account not found.", code="account_not_found", details={"account_id": missing})


def _raise_first_short(worked: dict[chains.Key, list[chains.Worked] | chains.Short]) -> None:
    shorts = [w for w in worked.values() if isinstance(w, chains.Short)]
    if shorts:
        short = min(shorts, key=lambda x: x.posting_index)
        raise _insufficient(short.account_id, short.balance, short.amount, short.posting_index)


def _write_sqlite(session: Session, fresh: list[tuple[PostingRequest, dict[str, Any], int]],
                  legs: list[list[tuple[int, int, int]]], chain_legs: dict[chains.Key, list[chains.ChainLeg]],
                  fingerprints: list[str]) -> dict[str, PostingResult]:
    """SQLite has one writer at a time: lock (BEGIN IMMEDIATE semantics), work, write."""
    wanted = sorted(chain_legs)
    locked = chains.starts(session.execute(
        select(BalanceShard.account_id, BalanceShard.shard, BalanceShard.balance, BalanceShard.allow_negative,
               BalanceShard.last_seq, BalanceShard.last_hash)
        .where(tuple_(BalanceShard.account_id, BalanceShard.shard).in_(wanted))
        .order_by(BalanceShard.account_id, BalanceShard.shard)
        .with_for_update()
    ).all())
    _refuse_missing(wanted, locked)
    worked = {key: chains.work(key, locked[key], chain_legs[key], fingerprints) for key in wanted}
    _raise_first_short(worked)

    # each posting's legs, worked, in leg order
    done: list[list[chains.Worked]] = [[None] * len(posting_legs) for posting_legs in legs]  # type: ignore[list-item]
    for key, items in chain_legs.items():
        for (p, i, _amount), leg_done in zip(items, worked[key]):  # type: ignore[arg-type]
            done[p][i] = leg_done
    entries: list[dict[str, Any]] = []
    results: dict[str, PostingResult] = {}
    for (_req, row, posting_id), posting_legs, posting_done in zip(fresh, legs, done):
        after: dict[int, int] = {}
        for (account_id, shard, amount), (seq, balance, digest) in zip(posting_legs, posting_done):
            entries.append({"posting_id": posting_id, "account_id": account_id, "shard": shard, "seq": seq,
                            "amount": amount, "balance_after": balance, "effective_at": row["effective_at"],
                            "hash": digest})
            after[account_id] = balance
        results[row["idem_key"]] = PostingResult(posting_id=posting_id, replayed=False, balances_after=after)
    table = BalanceShard.__table__
    session.execute(
        update(table).where(table.c.account_id == bindparam("k_account"), table.c.shard == bindparam("k_shard"))
        .values(balance=bindparam("v_balance"), last_seq=bindparam("v_seq"), last_hash=bindparam("v_hash")),
        [{"k_account": a, "k_shard": sh, "v_balance": w[-1][1], "v_seq": w[-1][0], "v_hash": w[-1][2]}  # type: ignore[index]
         for (a, sh), w in worked.items()])
    session.execute(Entry.__table__.insert(), entries)
    return results
