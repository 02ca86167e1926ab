"""Redemption: scenarios and their outlets, one-time codes, usage counters, holds, redemptions, refunds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 07:50:08.494411
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scenarios',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('family', sa.String(length=16), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('points_cost', sa.Integer(), nullable=False),
    sa.Column('required_grade', sa.String(length=10), nullable=True),
    sa.Column('yuan_value_fen', sa.Integer(), nullable=False),
    sa.Column('limit_day', sa.Integer(), nullable=True),
    sa.Column('limit_month', sa.Integer(), nullable=True),
    sa.Column('limit_year', sa.Integer(), nullable=True),
    sa.Column('total_quota', sa.Integer(), nullable=True),
    sa.Column('quota_used', sa.Integer(), nullable=False),
    sa.Column('stock_note', sa.String(length=200), nullable=True),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('terms_zh', sa.Text(), nullable=False),
    sa.Column('terms_en', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind <> 'privilege' OR (points_cost = 0 AND required_grade IS NOT NULL)", name=op.f('ck_scenarios_privilege_needs_grade')),
    sa.CheckConstraint("kind <> 'spend' OR points_cost > 0", name=op.f('ck_scenarios_spend_costs_points')),
    sa.CheckConstraint("kind IN ('spend','privilege')", name=op.f('ck_scenarios_kind')),
    sa.CheckConstraint("status IN ('active','suspended')", name=op.f('ck_scenarios_status')),
    sa.CheckConstraint('total_quota IS NULL OR quota_used <= total_quota', name=op.f('ck_scenarios_quota')),
    sa.CheckConstraint('yuan_value_fen >= 0', name=op.f('ck_scenarios_yuan_value')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_scenarios_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenarios')),
    sa.UniqueConstraint('code', name=op.f('uq_scenarios_code'))
    )
    with op.batch_alter_table('scenarios', schema=None) as batch_op:
        batch_op.create_index('ix_scenarios_partner', ['partner_id'], unique=False)

    op.create_table('one_time_codes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('participant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code_digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used_by_outlet', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_one_time_codes_participant_id_participants')),
    sa.ForeignKeyConstraint(['used_by_outlet'], ['outlets.id'], name=op.f('fk_one_time_codes_used_by_outlet_outlets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_one_time_codes')),
    sa.UniqueConstraint('code_digest', name=op.f('uq_one_time_codes_code_digest'))
    )
    with op.batch_alter_table('one_time_codes', schema=None) as batch_op:
        batch_op.create_index('ix_one_time_codes_expiry', ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_one_time_codes_participant_id'), ['participant_id'], unique=False)

    op.create_table('redemptions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scenario_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('outlet_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('participant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('yuan_value_fen', sa.Integer(), nullable=False),
    sa.Column('refunded_points', sa.Integer(), nullable=False),
    sa.Column('refunded_fen', sa.Integer(), nullable=False),
    sa.Column('posting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('terms', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('idem_key', sa.String(length=100), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=False),
    sa.CheckConstraint("kind <> 'privilege' OR points = 0", name=op.f('ck_redemptions_privilege_free')),
    sa.CheckConstraint("kind IN ('spend','privilege')", name=op.f('ck_redemptions_kind')),
    sa.CheckConstraint('points >= 0 AND refunded_points >= 0 AND refunded_points <= points', name=op.f('ck_redemptions_refund_bound')),
    sa.ForeignKeyConstraint(['outlet_id'], ['outlets.id'], name=op.f('fk_redemptions_outlet_id_outlets')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_redemptions_participant_id_participants')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_redemptions_partner_id_partners')),
    sa.ForeignKeyConstraint(['posting_id'], ['postings.id'], name=op.f('fk_redemptions_posting_id_postings')),
    sa.ForeignKeyConstraint(['scenario_id'], ['scenarios.id'], name=op.f('fk_redemptions_scenario_id_scenarios')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_redemptions')),
    sa.UniqueConstraint('outlet_id', 'idem_key', name=op.f('uq_redemptions_outlet_id_idem_key'))
    )
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.create_index('ix_redemptions_participant', ['participant_id', 'created_at'], unique=False)
        batch_op.create_index('ix_redemptions_partner_time', ['partner_id', 'created_at'], unique=False)

    op.create_table('scenario_outlets',
    sa.Column('scenario_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('outlet_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['outlet_id'], ['outlets.id'], name=op.f('fk_scenario_outlets_outlet_id_outlets')),
    sa.ForeignKeyConstraint(['scenario_id'], ['scenarios.id'], name=op.f('fk_scenario_outlets_scenario_id_scenarios')),
    sa.PrimaryKeyConstraint('scenario_id', 'outlet_id', name=op.f('pk_scenario_outlets'))
    )
    with op.batch_alter_table('scenario_outlets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scenario_outlets_outlet_id'), ['outlet_id'], unique=False)

    op.create_table('usage_counters',
    sa.Column('participant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scenario_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=11), nullable=False),
    sa.Column('used', sa.Integer(), nullable=False),
    sa.CheckConstraint('used >= 0', name=op.f('ck_usage_counters_used')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_usage_counters_participant_id_participants')),
    sa.ForeignKeyConstraint(['scenario_id'], ['scenarios.id'], name=op.f('fk_usage_counters_scenario_id_scenarios')),
    sa.PrimaryKeyConstraint('participant_id', 'scenario_id', 'period', name=op.f('pk_usage_counters'))
    )
    op.create_table('holds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scenario_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('outlet_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('participant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('hold_posting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('release_posting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('redemption_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('idem_key', sa.String(length=100), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=False),
    sa.CheckConstraint("status IN ('held','captured','voided','expired')", name=op.f('ck_holds_status')),
    sa.CheckConstraint('points > 0', name=op.f('ck_holds_points')),
    sa.ForeignKeyConstraint(['hold_posting_id'], ['postings.id'], name=op.f('fk_holds_hold_posting_id_postings')),
    sa.ForeignKeyConstraint(['outlet_id'], ['outlets.id'], name=op.f('fk_holds_outlet_id_outlets')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_holds_participant_id_participants')),
    sa.ForeignKeyConstraint(['redemption_id'], ['redemptions.id'], name=op.f('fk_holds_redemption_id_redemptions')),
    sa.ForeignKeyConstraint(['release_posting_id'], ['postings.id'], name=op.f('fk_holds_release_posting_id_postings')),
    sa.ForeignKeyConstraint(['scenario_id'], ['scenarios.id'], name=op.f('fk_holds_scenario_id_scenarios')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holds')),
    sa.UniqueConstraint('outlet_id', 'idem_key', name=op.f('uq_holds_outlet_id_idem_key'))
    )
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.create_index('ix_holds_expiry', ['status', 'expires_at'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('redemption_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('outlet_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('yuan_value_fen', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('posting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('idem_key', sa.String(length=100), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=False),
    sa.CheckConstraint('points > 0', name=op.f('ck_refunds_points')),
    sa.ForeignKeyConstraint(['outlet_id'], ['outlets.id'], name=op.f('fk_refunds_outlet_id_outlets')),
    sa.ForeignKeyConstraint(['posting_id'], ['postings.id'], name=op.f('fk_refunds_posting_id_postings')),
    sa.ForeignKeyConstraint(['redemption_id'], ['redemptions.id'], name=op.f('fk_refunds_redemption_id_redemptions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds')),
    sa.UniqueConstraint('outlet_id', 'idem_key', name=op.f('uq_refunds_outlet_id_idem_key'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index('ix_refunds_redemption', ['redemption_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index('ix_refunds_redemption')

    op.drop_table('refunds')
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.drop_index('ix_holds_expiry')

    op.drop_table('holds')
    op.drop_table('usage_counters')
    with op.batch_alter_table('scenario_outlets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scenario_outlets_outlet_id'))

    op.drop_table('scenario_outlets')
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_index('ix_redemptions_partner_time')
        batch_op.drop_index('ix_redemptions_participant')

    op.drop_table('redemptions')
    with op.batch_alter_table('one_time_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_one_time_codes_participant_id'))
        batch_op.drop_index('ix_one_time_codes_expiry')

    op.drop_table('one_time_codes')
    with op.batch_alter_table('scenarios', schema=None) as batch_op:
        batch_op.drop_index('ix_scenarios_partner')

    op.drop_table('scenarios')
