"""Proof that nobody altered the ledger.

* verify: recompute every chain and name the first altered or missing entry of each;
* digest: a daily snapshot of chain heads to keep outside the database, so that rewriting a
  whole chain (hashes included) is caught when checked against the snapshot; only heads that
  verify are recorded;
* reconcile: cached balances equal the sum of entries, every posting sums to zero, all entries
  sum to zero. These report; they never fix.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, literal_column, null, select, union_all
from sqlalchemy.orm import Session

from infra.db import dialect_insert, utcnow
from ledger.models import GENESIS_HASH, BalanceShard, ChainDigest, Entry, LedgerCheck, Posting
from ledger.services.chain import canonical_json, entry_hash, posting_fingerprint

MAX_PROBLEMS = 200
MAX_BIGINT, MAX_SMALLINT = 2**63 - 1, 2**15 - 1


@dataclass
class Report:
    kind: str
    ok: bool = True
    stats: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)
    # verify over the whole ledger: each chain's head as that run read and verified it
    # ("account:shard" -> [seq, hash], as `chain_heads`), what a digest records; None otherwise.
    heads: dict[str, list[Any]] | None = None

    def problem(self, **details: Any) -> None:
        self.ok = False
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(details)


def problem_in_words(problem: dict[str, Any]) -> str:
    """One problem on one line for a log or a terminal: what, where, and the detail."""
    where = ", ".join(f"{name.replace('_id', '')} {problem[name]}" for name in
                      ("account_id", "shard", "seq", "entry_id", "posting_id") if problem.get(name) is not None)
    detail = problem.get("detail")
    return f"{problem.get('problem')}" + (f" at {where}" if where else "") + (f": {detail}" if detail else "")


_POSTING_COLUMNS = (Posting.id, Posting.kind, Posting.reason, Posting.actor_kind, Posting.actor_id, Posting.actor_label,
                    Posting.source_type, Posting.source_id, Posting.meta, Posting.effective_at, Posting.idem_scope,
                    Posting.idem_key, Posting.reverses_id)


def verify_chains(session: Session, *, account_id: int | None = None) -> Report:
    """Walk every chain in order; report the first broken link of each chain.

    The entry hash covers the posting's fingerprint (effective time included) but not the entry's
    own copy of the effective time, which balance_at and statements read: it must equal the
    posting's, or the entry was moved in time.

    Each chain's end is held against its head as read by the same statement as its entries: the
    checks run while the ledger is written, and on PostgreSQL two statements read two snapshots,
    so a posting committed in between read as entries missing from the head's chain. The heads
    that verify are kept (`Report.heads`, whole-ledger runs only) for a digest to record."""
    report = Report(kind="verify")
    verified_heads: dict[str, list[Any]] = {}
    stmt = (select(Entry.id.label("entry_id"), Entry.account_id, Entry.shard, Entry.seq, Entry.amount, Entry.balance_after,
                   Entry.hash, Entry.effective_at.label("entry_effective_at"), *_POSTING_COLUMNS,
                   BalanceShard.last_seq.label("head_seq"), BalanceShard.last_hash.label("head_hash"),
                   BalanceShard.account_id.label("head_account_id"))
            .join(Posting, Posting.id == Entry.posting_id)
            .outerjoin(BalanceShard, (BalanceShard.account_id == Entry.account_id)
                       & (BalanceShard.shard == Entry.shard))
            .order_by(Entry.account_id, Entry.shard, Entry.seq))
    heads = select(BalanceShard)
    if account_id is not None:
        stmt = stmt.where(Entry.account_id == account_id)
        heads = heads.where(BalanceShard.account_id == account_id)
    expected = {(b.account_id, b.shard): b for b in session.scalars(heads)}
    chain: tuple[int, int] | None = None
    running_hash, running_balance, next_seq, broken = GENESIS_HASH, 0, 1, False
    entries = 0
    head: Any = None  # the chain's last row, which carries its head as the same statement read it

    def close_chain(key: tuple[int, int] | None) -> None:
        """The chain's end against its head: entries missing at the end, entries written past the
        head (the first one named), or a head whose hash is not the last entry's."""
        if key is None or broken:
            return
        if head.head_account_id is None:
            report.problem(account_id=key[0], shard=key[1], problem="chain_without_balance_row")
        elif head.head_seq > next_seq - 1:
            report.problem(account_id=key[0], shard=key[1], seq=next_seq, entry_id=None,
                           problem="missing_entries_at_end",
                           detail=f"head says seq {head.head_seq}, entries end at {next_seq - 1}")
        elif head.head_seq < next_seq - 1:
            report.problem(account_id=key[0], shard=key[1], seq=head.head_seq + 1, entry_id=past_head[0],
                           posting_id=past_head[1], problem="entries_past_head",
                           detail=f"head says seq {head.head_seq}, entries go on to {next_seq - 1}")
        elif head.head_hash != running_hash:
            report.problem(account_id=key[0], shard=key[1], seq=head.head_seq, entry_id=None,
                           problem="head_altered", detail="the head's hash is not its last entry's")
        else:
            verified_heads[f"{key[0]}:{key[1]}"] = [head.head_seq, head.head_hash]

    seen_chains: set[tuple[int, int]] = set()
    past_head: tuple[int | None, int | None] = (None, None)  # (entry, posting) just past the chain's head
    for row in session.execute(stmt.execution_options(yield_per=5000)):
        key = (row.account_id, row.shard)
        if key != chain:
            close_chain(chain)
            chain, running_hash, running_balance, next_seq, broken = key, GENESIS_HASH, 0, 1, False
            seen_chains.add(key)
            past_head = (None, None)
        head = row
        entries += 1
        if broken:
            continue
        if row.head_seq is not None and row.seq == row.head_seq + 1:
            past_head = (row.entry_id, row.id)
        where = {"account_id": row.account_id, "shard": row.shard, "seq": next_seq, "entry_id": row.entry_id,
                 "posting_id": row.id}
        if row.seq != next_seq:
            report.problem(**where, problem="missing_entry",
                           detail=f"expected seq {next_seq}, found seq {row.seq} (entry {row.entry_id})")
            broken = True
            continue
        fp = posting_fingerprint(row._mapping)
        recomputed = entry_hash(running_hash, fp, row.account_id, row.shard, row.seq, row.amount, row.balance_after)
        if recomputed != row.hash or running_balance + row.amount != row.balance_after:
            report.problem(**where, problem="altered_entry",
                           detail="entry or its posting differs from what was hashed")
            broken = True
        elif row.entry_effective_at != row.effective_at:
            report.problem(**where, problem="altered_entry",
                           detail=f"entry effective at {row.entry_effective_at.isoformat()}, "
                                  f"its posting at {row.effective_at.isoformat()}")
            broken = True
        running_hash, running_balance, next_seq = row.hash, running_balance + row.amount, next_seq + 1
    close_chain(chain)
    for key, head in expected.items():
        if key not in seen_chains and head.last_seq != 0:
            report.problem(account_id=key[0], shard=key[1], seq=1, entry_id=None, problem="missing_entry",
                           detail=f"head says seq {head.last_seq}, no entries found")
    report.stats = {"chains": len(expected), "entries": entries}
    if account_id is None:
        report.heads = verified_heads
    return report


def reconcile(session: Session) -> Report:
    """Compare every shard's cached balance with its entries, from both sides: a shard with entries
    but no balance row (deleted behind the triggers' back) reads as 0 to every reader."""
    report = Report(kind="reconcile")
    # A full outer join of balance rows and entry sums, written as UNION ALL + GROUP BY: one pass
    # over the entries, and SQLite before 3.39 has no FULL JOIN.
    zero = literal_column("0")
    both = union_all(
        select(BalanceShard.account_id, BalanceShard.shard, BalanceShard.balance.label("cached"),
               BalanceShard.last_seq.label("cached_seq"), literal_column("1").label("has_row"),
               zero.label("total"), zero.label("n")),
        select(Entry.account_id, Entry.shard, null(), null(), zero, func.sum(Entry.amount), func.count())
        .group_by(Entry.account_id, Entry.shard),
    ).subquery()
    rows = session.execute(
        select(both.c.account_id, both.c.shard, func.sum(both.c.cached).label("cached"),
               func.sum(both.c.cached_seq).label("cached_seq"), func.sum(both.c.has_row).label("has_row"),
               func.sum(both.c.total).label("total"), func.sum(both.c.n).label("n"))
        .group_by(both.c.account_id, both.c.shard)
    ).all()
    balance_rows = 0
    for r in rows:
        total, count = int(r.total), int(r.n)
        if not r.has_row:
            report.problem(account_id=r.account_id, shard=r.shard, problem="entries_without_balance_row",
                           cached_balance=None, sum_of_entries=total, cached_seq=None, entries=count)
            continue
        balance_rows += 1
        cached, cached_seq = int(r.cached), int(r.cached_seq)
        if total != cached or count != cached_seq:
            report.problem(account_id=r.account_id, shard=r.shard, problem="balance_mismatch",
                           cached_balance=cached, sum_of_entries=total, cached_seq=cached_seq, entries=count)
    grand = int(session.scalar(select(func.coalesce(func.sum(Entry.amount), 0))) or 0)
    if grand != 0:
        report.problem(problem="ledger_not_balanced", sum_of_all_entries=grand)
    unbalanced = session.execute(
        select(Entry.posting_id, func.sum(Entry.amount).label("total"), func.count().label("n"))
        .group_by(Entry.posting_id).having((func.sum(Entry.amount) != 0) | (func.count() < 2)).limit(MAX_PROBLEMS)
    ).all()
    for r in unbalanced:
        report.problem(posting_id=r.posting_id, problem="posting_not_balanced", total=int(r.total), entries=int(r.n))
    empty = session.scalars(select(Posting.id).outerjoin(Entry, Entry.posting_id == Posting.id)
                            .where(Entry.id.is_(None)).limit(MAX_PROBLEMS)).all()
    for posting_id in empty:
        report.problem(posting_id=posting_id, problem="posting_without_entries")
    report.stats = {"balance_rows": balance_rows, "sum_of_all_entries": grand}
    return report


def chain_heads(session: Session) -> dict[str, list[Any]]:
    return {f"{b.account_id}:{b.shard}": [b.last_seq, b.last_hash]
            for b in session.execute(select(BalanceShard.account_id, BalanceShard.shard, BalanceShard.last_seq,
                                            BalanceShard.last_hash).where(BalanceShard.last_seq > 0))}


def heads_digest(heads: dict[str, list[Any]]) -> str:
    return hashlib.sha256(canonical_json(heads).encode()).hexdigest()


def refuse_day_to_come(day: dt.date, today: dt.date) -> None:
    """A digest records the heads as they are now, labelled with its day, once per day: recorded
    for a later day it would hold that day's label with heads of today, and that night's job would
    find the day taken and record nothing. So a day after the county's today is refused."""
    if day > today:
        raise ValueError(f"{day.isoformat()} is still to come (today is {today.isoformat()} in the county): "
                         "a digest records the heads as they are now.")


class ChainsDoNotVerify(Exception):
    """Recording a digest was refused: the chains fail verification (`report`, to record and show)."""

    def __init__(self, report: Report, day: dt.date) -> None:
        self.report, self.day = report, day
        first = problem_in_words(report.problems[0]) if report.problems else "unknown"
        super().__init__(f"the chains do not verify, so no digest was recorded for {day.isoformat()}: "
                         f"{len(report.problems)} problem(s), the first {first}")


def record_digest(session: Session, day: dt.date, verified: Report | None = None) -> ChainDigest:
    """Snapshot the heads once per day (idempotent: a second run that day returns the first),
    only once every chain verifies.

    A digest kept outside vouches for the day's heads: one of heads that already fail verification
    would vouch for the tampering, and a chain rewritten later to hide it would match. So then
    nothing is recorded and `ChainsDoNotVerify` carries the report, for the caller to record and
    report (task result, CLI exit 1); the next run records the day once the ledger verifies. Not a
    digest flagged as failed: a broken chain is an incident to settle first, and a file that may
    be a failed one is one more thing to misread later. The heads are those the verification read
    with their entries (`Report.heads`), so nothing written in between goes in unverified.

    `verified`: the caller's whole-ledger verification in this transaction (the nightly job's:
    verify reads every entry, so it is not run twice); else the chains are verified here. A day
    already recorded is returned unverified: it verified then, and is the evidence if not now."""
    digest = session.scalar(select(ChainDigest).where(ChainDigest.day == day))
    if digest is not None:
        return digest
    report = verified if verified is not None else verify_chains(session)
    if report.kind != "verify" or report.heads is None:
        raise ValueError("a digest needs a verification of the whole ledger")
    if not report.ok:
        raise ChainsDoNotVerify(report, day)
    heads = report.heads
    session.execute(dialect_insert(session)(ChainDigest.__table__).values(
        day=day, created_at=utcnow(), chain_count=len(heads), entry_count=sum(h[0] for h in heads.values()),
        digest=heads_digest(heads), heads=heads).on_conflict_do_nothing(index_elements=["day"]))
    digest = session.scalar(select(ChainDigest).where(ChainDigest.day == day))
    assert digest is not None
    return digest


def export_digest(digest: ChainDigest) -> dict[str, Any]:
    return {"day": digest.day.isoformat(), "created_at": digest.created_at.isoformat(), "digest": digest.digest,
            "chain_count": digest.chain_count, "entry_count": digest.entry_count, "heads": digest.heads}


def verify_against_digest(session: Session, document: dict[str, Any]) -> Report:
    """Check that every head recorded in an exported digest is still in the ledger, unchanged."""
    report = Report(kind="verify")
    heads = document.get("heads") or {}
    if heads_digest(heads) != document.get("digest"):
        report.problem(problem="digest_file_altered", detail="the heads do not match the file's digest")
    for key, head in heads.items():
        try:
            account_id, shard = (int(x) for x in key.split(":"))
            seq, recorded_hash = int(head[0]), str(head[1])
            if not (0 < account_id <= MAX_BIGINT and 0 <= shard <= MAX_SMALLINT and 0 < seq <= MAX_BIGINT):
                raise ValueError("out of the columns' range")  # no such row; the database would refuse the query
        except (TypeError, ValueError, IndexError, KeyError):  # the file was edited by hand: say so, go on
            report.problem(problem="digest_file_altered", detail=f"head {key!r} is not account:shard -> [seq, hash]")
            continue
        row = session.execute(select(Entry.id, Entry.hash).where(
            Entry.account_id == account_id, Entry.shard == shard, Entry.seq == seq)).first()
        if row is None:
            report.problem(account_id=account_id, shard=shard, seq=seq, entry_id=None, problem="missing_entry",
                           detail=f"the digest of {document.get('day')} recorded this entry")
        elif row.hash != recorded_hash:
            report.problem(account_id=account_id, shard=shard, seq=seq, entry_id=row.id, problem="chain_rewritten",
                           detail=f"hash differs from the digest of {document.get('day')}")
    report.stats = {"heads": len(heads)}
    return report


def record_check(session: Session, report: Report, period_key: str | None = None) -> LedgerCheck | None:
    """Store a run's outcome. With a period key, a second run for the same period is a no-op."""
    now = utcnow()
    values = {"kind": report.kind, "period_key": period_key, "started_at": now, "finished_at": now, "ok": report.ok,
              "stats": report.stats, "problems": {"items": report.problems}}
    stmt = dialect_insert(session)(LedgerCheck.__table__).values(**values)
    if period_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["kind", "period_key"])
    inserted = session.execute(stmt.returning(LedgerCheck.__table__.c.id)).first()
    return session.get(LedgerCheck, inserted.id) if inserted else None


def latest_checks(session: Session) -> dict[str, LedgerCheck | None]:
    return {kind: session.scalar(select(LedgerCheck).where(LedgerCheck.kind == kind).order_by(LedgerCheck.id.desc()).limit(1))
            for kind in ("verify", "reconcile")}
