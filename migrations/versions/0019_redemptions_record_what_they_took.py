"""Redemption: each redemption records what was taken for it, and a full refund gives back exactly that.

Why: a full refund gave back a unit of the scenario's quota whenever the scenario had a quota at
the time of the refund, and the usage counters its terms had limits for. So a quota added after a
redemption (which took no unit) was given a unit back on its refund: stock out of nothing, one
more sale than the quota allows. A unit taken under a quota that staff lifted before the refund
was never given back, and the count was one too high once a quota was set again. A capture takes
the limits of the scenario as it stands at the capture, while its terms are the hold's, so the
terms did not always say which counters it raised.

`redemptions.consumed` holds {"periods": [usage counter periods raised], "quota": whether a unit of
the quota was taken}, written by `limits.take`'s callers and by `redemption_redeem`, which takes
them in SQL. Redemptions made before this revision keep NULL and are given back as before.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 03:00:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from migrations.earlier import revision_module

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

_COLUMNS = "refunded_points, refunded_fen, posting_id, terms, idem_key, request_digest, created_at)"
_TERMS_END = "'terms_zh', sc.terms_zh, 'terms_en', sc.terms_en),\n"
# What the call took (the same as `limits.consumption`): the periods of the limits it raised, in
# the order day, month, year, and whether a unit of the quota.
_CONSUMED = ("            jsonb_build_object('periods', to_jsonb(array_remove(ARRAY[\n"
             "                CASE WHEN sc.limit_day IS NOT NULL THEN p_periods[1] END,\n"
             "                CASE WHEN sc.limit_month IS NOT NULL THEN p_periods[2] END,\n"
             "                CASE WHEN sc.limit_year IS NOT NULL THEN p_periods[3] END], NULL)),\n"
             "                'quota', sc.total_quota IS NOT NULL),\n")


def _redeem_0010() -> str:
    return revision_module("0010_redeem_as_one_unit_of_work.py").REDEEM


def redeem() -> str:
    """0010's function, which also records what it took in `consumed`."""
    text = _redeem_0010()
    for old in ("CREATE FUNCTION", _COLUMNS, _TERMS_END):
        assert text.count(old) == 1, old
    return (text.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
            .replace(_COLUMNS, "refunded_points, refunded_fen, posting_id, terms, consumed, idem_key, request_digest, "
                               "created_at)")
            .replace(_TERMS_END, _TERMS_END + _CONSUMED))


def upgrade() -> None:
    with op.batch_alter_table("redemptions") as batch:
        batch.add_column(sa.Column("consumed", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                                                      "postgresql"), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(redeem())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_redeem_0010().replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    with op.batch_alter_table("redemptions") as batch:
        batch.drop_column("consumed")
