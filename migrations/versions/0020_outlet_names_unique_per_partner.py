"""Identity: a partner's outlets have distinct names.

Why: registering an outlet took no idempotency key, so a retried request (a timeout on a county
office's network) made a second outlet of the same name: two rows that settlement, the catalogue's
places and the API keys list could not tell apart. A name already taken by the partner is now a
409 naming `name` (the service checks; this constraint settles a race). An upgrade over data that
already holds such twins stops and names them rather than renaming anything.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 04:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    twins = op.get_bind().execute(sa.text(
        "SELECT partner_id, name, count(*) FROM outlets GROUP BY partner_id, name HAVING count(*) > 1")).all()
    if twins:
        raise RuntimeError("Outlets share a name within a partner; rename them first: "
                           + "; ".join(f"partner {p}: {n!r} x{c}" for p, n, c in twins))
    with op.batch_alter_table("outlets") as batch:
        batch.create_unique_constraint("uq_outlets_partner_id_name", ["partner_id", "name"])


def downgrade() -> None:
    with op.batch_alter_table("outlets") as batch:
        batch.drop_constraint("uq_outlets_partner_id_name", type_="unique")
