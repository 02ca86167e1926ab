"""Ledger: entries no longer store the previous entry's hash.

Why: `prev_hash` repeated what the entry before it in the same chain holds (its `hash`), and it
was a third of every entry row: written with each entry, sent as an array by every batch, and in
the write that concurrent batches queue behind. The chain is unchanged: an entry's hash is still
taken over the previous hash, and verification walks each chain from genesis, so an altered entry
is named by its recomputed hash and a missing one by the gap in `seq`, as before.

`ledger_post_one` (migration 0004) is recreated without the column; its hashing is unchanged.
The downgrade restores the column, filled from each chain's previous entry.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 13:20:00
"""
import sqlalchemy as sa
from alembic import op

from migrations.earlier import revision_module

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _post_one_0004() -> str:
    return revision_module("0004_posting_function.py").POST_ONE


OLD_INSERT = """    INSERT INTO entries (posting_id, account_id, shard, seq, amount, balance_after, effective_at, prev_hash, hash)
    SELECT p_id, v.account_id, v.shard, v.seq, v.amount, v.balance, p_effective_at, v.prev, v.hash
      FROM unnest(p_accounts, sh, seq, p_amounts, bal, prev, hash) AS v(account_id, shard, seq, amount, balance, prev, hash);"""
NEW_INSERT = """    INSERT INTO entries (posting_id, account_id, shard, seq, amount, balance_after, effective_at, hash)
    SELECT p_id, v.account_id, v.shard, v.seq, v.amount, v.balance, p_effective_at, v.hash
      FROM unnest(p_accounts, sh, seq, p_amounts, bal, hash) AS v(account_id, shard, seq, amount, balance, hash);"""

BACKFILL = ("UPDATE entries SET prev_hash = w.prev FROM (SELECT id, coalesce(lag(hash) OVER "
            "(PARTITION BY account_id, shard ORDER BY seq), '" + "0" * 64 + "') AS prev FROM entries) AS w "
            "WHERE w.id = entries.id")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        old = _post_one_0004()
        assert OLD_INSERT in old, "migration 0004's ledger_post_one changed"
        op.execute(old.replace(OLD_INSERT, NEW_INSERT))
    op.execute("ALTER TABLE entries DROP COLUMN prev_hash")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column("entries", sa.Column("prev_hash", sa.String(64), nullable=True))
    if postgres:
        op.execute("ALTER TABLE entries DISABLE TRIGGER entries_append_only")
        op.execute(BACKFILL)
        op.execute("ALTER TABLE entries ENABLE TRIGGER entries_append_only")
        op.alter_column("entries", "prev_hash", nullable=False)
        op.execute(_post_one_0004())
    else:
        op.execute("DROP TRIGGER entries_no_update")
        op.execute(BACKFILL)
        op.execute("CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries "
                   "BEGIN SELECT RAISE(ABORT, 'table entries is append-only: UPDATE refused'); END")
