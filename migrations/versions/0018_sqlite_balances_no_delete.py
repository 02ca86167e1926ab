"""SQLite: balance rows refuse DELETE, as they do on PostgreSQL (migration 0004).

Why: a balance row holds its shard's chain head and cached balance; deleting it would make the
account's balance read as nothing while its entries remain. PostgreSQL has refused it since 0004
(`balances_no_delete`); the embedded default had no such guard, so the same mistake went
unrefused there (reconcile reports it either way).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 23:15:00
"""
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE TRIGGER balances_no_delete BEFORE DELETE ON balances "
                   "BEGIN SELECT RAISE(ABORT, 'table balances: DELETE refused'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER balances_no_delete")
