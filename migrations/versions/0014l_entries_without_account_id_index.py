"""Ledger: entries lose their (account_id, id) index.

Why: every entry was written with four indexes, and a batch writes its participants' entries
while their balance rows are held, which concurrent batches queue on. Without this one
(`bench/ledger_profile.py`, one client, same host minutes apart): the write under the locks 12.1
and 12.7 -> 10.7 and 10.8 ms per batch of 1,000, the system chain's early write 6.8-7.2 -> 6.0,
server CPU 0.034-0.035 -> 0.032 ms per posting, and about 9 % less WAL (2,000 fewer B-tree
records per batch).

Readers by account keep an index: the unique (account_id, shard, seq) one starts with the
account. The statement, the one reader that wanted entries in id order, reads each shard's
newest entries by seq (within a shard ids grow with seq: a shard's entries are written under
its balance row's lock and ids come from one sequence) and takes the newest by id of those
(`ledger.services.accounts.statement`).

Revision ID: 0014l
Revises: 0013
Create Date: 2026-11-29 18:20:00
"""
from alembic import op

revision = '0014l'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_entries_account_id_desc', table_name='entries')


def downgrade() -> None:
    op.create_index('ix_entries_account_id_desc', 'entries', ['account_id', 'id'])
