"""Ledger: two fewer B-tree indexes written with every entry.

Why: every entry row is written with each of its indexes, and on a batch of postings the entry
inserts are most of the server's work while the balance rows are held. Measured on the batch
benchmark, dropping these took about a quarter off the server's time per posting.

- `ix_entries_account_effective` goes. Every reader that filters entries by effective time also
  names the account (balance at a past moment, points earned in a window, a partner's month), and
  `ix_entries_account_id_desc` finds an account's entries; the time filter then applies to that
  account's rows. None of those reads became slower in order: each already summed all the
  account's rows up to a moment, or reads a participant's few hundred.
- `ix_entries_posting` becomes a BRIN index on PostgreSQL. Entries are appended in posting-id
  order (ids come from one sequence, handed out in small blocks), so a block-range index finds
  a posting's entries (reversal, posting detail) by reading a few 16-page ranges, and costs
  almost nothing to maintain; `autosummarize` keeps the newest ranges summarised as they fill,
  so a look-up does not read the unsummarised tail. SQLite keeps its B-tree.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 12:05:00
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_entries_account_effective', table_name='entries')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_entries_posting', table_name='entries')
        op.create_index('ix_entries_posting', 'entries', ['posting_id'], postgresql_using='brin',
                        postgresql_with={'pages_per_range': 16, 'autosummarize': 'on'})


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_entries_posting', table_name='entries')
        op.create_index('ix_entries_posting', 'entries', ['posting_id'])
    op.create_index('ix_entries_account_effective', 'entries', ['account_id', 'effective_at'])
