"""Redemption: a hold keeps the scenario's terms it was made under.

Why: a capture priced the redemption by the scenario as it stood at the capture (its yuan value
per point and its terms snapshot), so a change of terms between a hold and its capture, minutes
apart at the counter, rewrote what the participant had been shown. The hold now keeps the same
snapshot a redemption keeps (`terms`), and its capture uses it. Holds made before this revision
take their scenario's terms as they are now.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 21:25:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

TERMS = ("code", "name_zh", "name_en", "kind", "points_cost", "required_grade", "yuan_value_fen", "limit_day",
         "limit_month", "limit_year", "terms_zh", "terms_en")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("holds") as batch:
        batch.add_column(sa.Column("terms", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                                   nullable=True))
    build = "jsonb_build_object" if postgres else "json_object"
    pairs = ", ".join(f"'{k}', s.{k}" for k in TERMS)
    op.execute(f"UPDATE holds SET terms = (SELECT {build}({pairs}) FROM scenarios s WHERE s.id = holds.scenario_id)")
    with op.batch_alter_table("holds") as batch:
        batch.alter_column("terms", nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("holds") as batch:
        batch.drop_column("terms")
