"""Ledger: a batch's balance and entry writes in one function that reaches each balance row by
its primary key.

Why: the batch's `UPDATE balances ... FROM unnest(arrays)` was planned as a hash join that reads
and hashes the whole balances table (10,016 rows in the benchmark: about 3 ms) to update the
thousand rows the batch touches, which the primary key reaches in about 1 ms. The planner prefers
the hash join because it prices each index probe as a random read from disk; the balance rows of
active accounts are in memory. A function's own settings (`SET enable_hashjoin = off`, restored
when it returns) give the index plan without touching the caller's transaction. The batch's
reads reach their rows through a LATERAL subquery instead (`posting_sql`), which needs no setting.

The statement is the one `posting_sql.write_fragments` ran before: the new balances, then every
entry, in one statement (the entries' reference trigger still runs once per batch).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 16:40:00
"""
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

WRITE_CHAINS = r"""
CREATE FUNCTION ledger_write_chains(
    b_account bigint[], b_shard smallint[], b_balance bigint[], b_seq bigint[], b_hash text[],
    e_posting bigint[], e_account bigint[], e_shard smallint[], e_seq bigint[], e_amount bigint[],
    e_balance bigint[], e_effective timestamptz[], e_hash text[]) RETURNS void
LANGUAGE plpgsql SET enable_hashjoin = off SET enable_mergejoin = off AS $$
BEGIN
    WITH moved AS (
        UPDATE balances b SET balance = v.balance, last_seq = v.seq, last_hash = v.hash
          FROM unnest(b_account, b_shard, b_balance, b_seq, b_hash) AS v(account_id, shard, balance, seq, hash)
         WHERE b.account_id = v.account_id AND b.shard = v.shard
        RETURNING 1)
    INSERT INTO entries (posting_id, account_id, shard, seq, amount, balance_after, effective_at, hash)
    SELECT * FROM unnest(e_posting, e_account, e_shard, e_seq, e_amount, e_balance, e_effective, e_hash);
END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(WRITE_CHAINS)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION ledger_write_chains(bigint[], smallint[], bigint[], bigint[], text[], bigint[], "
                   "bigint[], smallint[], bigint[], bigint[], bigint[], timestamptz[], text[])")
