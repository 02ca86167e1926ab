"""Scoring: an import counts its runs; identity: an API key remembers the request that issued it.

Why: a file whose import kills its worker (out of memory, say) left its job queued or importing,
and the broker's redelivery and the `scoring.requeue_stale_imports` sweep ran it again without
end. `import_jobs.attempts` counts the runs started, committed before each imports, so that after
`IMPORT_MAX_ATTEMPTS` the job is marked failed with a reason instead of run again. Jobs uploaded
before this revision start from 0.

Issuing an outlet's API key took no idempotency key: an admin whose request timed out and who sent
it again got two live keys, the first never seen (a key is shown once). `api_keys.idem_key` holds
the issuing request's key, scoped to its sender; a retry with it answers with that key's row and
issues none. Keys issued before keep NULL.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 06:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("idem_key", sa.String(length=100), nullable=True))
        batch.create_unique_constraint("uq_api_keys_idem_key", ["idem_key"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint("uq_api_keys_idem_key", type_="unique")
        batch.drop_column("idem_key")
    with op.batch_alter_table("import_jobs") as batch:
        batch.drop_column("attempts")
