"""Ledger tables.

A *posting* is one journal transaction; its *entries* (two or more) sum to zero. Every account
has one or more *balance shards*: a participant has exactly one, a system account such as
issuance has several, so that concurrent awards lock different rows instead of queueing on one.
Each shard is its own hash chain: an entry stores its sequence number in the shard, the previous
entry's hash and its own, so a verifier can name the first altered or missing entry.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from infra.db import Base, BigId, utcnow

ACCOUNT_KINDS = ("participant", "issuance", "partner", "adjustment", "escrow", "expiry")
# hold / release move points into and out of escrow while a counter holds them before capture.
POSTING_KINDS = ("award", "redemption", "refund", "reversal", "adjustment", "hold", "release")
GENESIS_HASH = "0" * 64


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("code"),
        UniqueConstraint("participant_id"),
        CheckConstraint("shard_count BETWEEN 1 AND 256", name="shard_count"),
        CheckConstraint("kind <> 'participant' OR (participant_id IS NOT NULL AND NOT allow_negative)",
                        name="participant_never_negative"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    shard_count: Mapped[int] = mapped_column(SmallInteger, default=1)
    allow_negative: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BalanceShard(Base):
    """The cached balance and chain head of one shard, updated in the posting's transaction."""

    __tablename__ = "balances"
    __table_args__ = (
        CheckConstraint("allow_negative OR balance >= 0", name="non_negative"),
        CheckConstraint("last_seq >= 0", name="seq"),
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    allow_negative: Mapped[bool] = mapped_column(default=False)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)


class Posting(Base):
    __tablename__ = "postings"
    __table_args__ = (
        UniqueConstraint("idem_scope", "idem_key"),
        # A posting is reversed at most once. Partial indexes: most postings have neither a reversal
        # link nor (in bulk) a source, and an index entry per NULL is write cost for nothing.
        Index("uq_postings_reverses_id", "reverses_id", unique=True, postgresql_where=text("reverses_id IS NOT NULL"),
              sqlite_where=text("reverses_id IS NOT NULL")),
        CheckConstraint("kind IN ('award','redemption','refund','reversal','adjustment','hold','release')",
                        name="kind"),
        CheckConstraint("(kind = 'reversal') = (reverses_id IS NOT NULL)", name="reversal_link"),
        CheckConstraint("length(reason) > 0", name="reason_required"),
        Index("ix_postings_source", "source_type", "source_id", postgresql_where=text("source_type IS NOT NULL"),
              sqlite_where=text("source_type IS NOT NULL")),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(Text)
    actor_kind: Mapped[str] = mapped_column(String(12))
    actor_id: Mapped[int] = mapped_column(BigId)
    actor_label: Mapped[str] = mapped_column(String(100))
    source_type: Mapped[str | None] = mapped_column(String(40))
    source_id: Mapped[str | None] = mapped_column(String(40))
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    effective_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    idem_scope: Mapped[str] = mapped_column(String(60))
    idem_key: Mapped[str] = mapped_column(String(100))
    request_digest: Mapped[str] = mapped_column(String(64))
    # On PostgreSQL the link is checked by the `postings_no_reversal_of_reversal` insert trigger
    # (migration 0011), not by a per-row foreign key; SQLite keeps its foreign key.
    reverses_id: Mapped[int | None] = mapped_column(BigId)

    entries: Mapped[list[Entry]] = relationship(back_populates="posting", order_by="Entry.id",
                                                primaryjoin="Posting.id == foreign(Entry.posting_id)")


class Entry(Base):
    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("account_id", "shard", "seq"),
        CheckConstraint("amount <> 0", name="non_zero"),
        CheckConstraint("seq >= 1", name="seq"),
        # No (account_id, id) index (migration 0015): readers by account use the unique one.
        # BRIN on PostgreSQL: entries arrive in posting-id order (migration 0005)
        Index("ix_entries_posting", "posting_id", postgresql_using="brin", postgresql_with={"pages_per_range": 16, "autosummarize": "on"}),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # On PostgreSQL these references are checked per statement by the `entries_references` trigger
    # (migration 0004), not by per-row foreign keys; SQLite keeps its foreign keys.
    posting_id: Mapped[int] = mapped_column(BigId)
    account_id: Mapped[int] = mapped_column(BigId)
    shard: Mapped[int] = mapped_column(SmallInteger)
    seq: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    effective_at: Mapped[dt.datetime]
    hash: Mapped[str] = mapped_column(String(64))

    posting: Mapped[Posting] = relationship(back_populates="entries", primaryjoin="foreign(Entry.posting_id) == Posting.id")


class ChainDigest(Base):
    """A daily snapshot of every chain head, meant to be exported and kept outside the database."""

    __tablename__ = "chain_digests"
    __table_args__ = (UniqueConstraint("day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    chain_count: Mapped[int] = mapped_column(Integer)
    entry_count: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    heads: Mapped[dict[str, Any]] = mapped_column(default=dict)


class LedgerCheck(Base):
    """The outcome of one verification or reconciliation run. Scheduled runs carry a period key
    so that a period is checked once even if the job fires twice."""

    __tablename__ = "ledger_checks"
    __table_args__ = (
        UniqueConstraint("kind", "period_key"),
        CheckConstraint("kind IN ('verify','reconcile')", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    period_key: Mapped[str | None] = mapped_column(String(20))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    ok: Mapped[bool] = mapped_column(default=False)
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    problems: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApprovalRequest(Base):
    """A correction waiting for a second pair of eyes: an adjustment above the threshold or a
    reversal. The database, not only the service, refuses a requester approving their own."""

    __tablename__ = "approval_requests"
    __table_args__ = (
        CheckConstraint("kind IN ('adjustment','reversal')", name="kind"),
        CheckConstraint("status IN ('pending','approved','rejected','failed')", name="status"),
        CheckConstraint("decided_by IS NULL OR decided_by <> requested_by", name="four_eyes"),
        CheckConstraint("kind <> 'adjustment' OR (account_id IS NOT NULL AND amount IS NOT NULL AND amount <> 0)",
                        name="adjustment_fields"),
        CheckConstraint("kind <> 'reversal' OR posting_id IS NOT NULL", name="reversal_fields"),
        Index("ix_approval_requests_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    posting_id: Mapped[int | None] = mapped_column(ForeignKey("postings.id"))
    reason: Mapped[str] = mapped_column(Text)
    region_path: Mapped[str] = mapped_column(String(200))
    requested_by: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[dt.datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    result_posting_id: Mapped[int | None] = mapped_column(ForeignKey("postings.id"))
    idem_key: Mapped[str | None] = mapped_column(String(100), unique=True)
