"""Scoring: a contribution remembers the idempotency key of the request that submitted it.

Why: a submission sent again after a timeout (a phone on a weak network, a clerk's double click)
made a second contribution, and so a second award. `contributions.idem_key` holds the submitting
request's key, scoped to its submitter (`<kind>:<id>:<key>`, a digest when longer than the
column); a unique index lets one contribution hold it, so a retry, even one arriving while the
first is still in flight, finds the first instead of making another. Partial, as imports and
staff who send no key write nothing in it. Contributions submitted before keep NULL.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30 08:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contributions") as batch:
        batch.add_column(sa.Column("idem_key", sa.String(length=100), nullable=True))
    op.create_index("uq_contributions_idem_key", "contributions", ["idem_key"], unique=True,
                    postgresql_where=sa.text("idem_key IS NOT NULL"), sqlite_where=sa.text("idem_key IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("uq_contributions_idem_key", table_name="contributions")
    with op.batch_alter_table("contributions") as batch:
        batch.drop_column("idem_key")
