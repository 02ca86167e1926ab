"""Ledger: entries lose their (account_id, id) index.

Why: every entry was written with four indexes, and a batch writes its participants' entries
while their balance rows are held, which concurrent batches queue on. Without this one
(`bench/ledger_profile.py`, one client, same host minutes apart): the write under the locks 12.1
and 12.7 -> 10.7 and 10.8 ms per batch of 1,000, the system chain's early write 6.8-7.2 -> 6.0,
server CPU 0.034-0.035 -> 0.032 ms per posting, and about 9 % less WAL (2,000 fewer B-tree
records per batch). `bench/ledger_bench.py --duration 20`, taking turns with main's code on the
same host (18:17-18:54): batches 20,600-26,000 postings/s on main, 24,500-28,300 here; batch
server CPU 0.039-0.045 -> 0.035-0.040 ms per posting.

Readers by account keep an index: the unique (account_id, shard, seq) one starts with the
account. The statement, the one reader that wanted entries in id order, reads a participant's one
shard by seq (within a shard ids grow with seq: a shard's entries are written under its balance
row's lock and ids come from one sequence); for a sharded account it takes each shard's newest
entries below the cursor and the newest of those by id (`ledger.services.accounts.statement`).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 18:20:00
"""
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_entries_account_id_desc', table_name='entries')


def downgrade() -> None:
    op.create_index('ix_entries_account_id_desc', 'entries', ['account_id', 'id'])
