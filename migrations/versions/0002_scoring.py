"""Scoring: rule sets and indicators, contributions and their workflow, objections, tallies,
evidence, imports, nominations. Published rule sets and contribution events are frozen by triggers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 07:30:51.637377
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('award_tallies',
    sa.Column('participant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('indicator_code', sa.String(length=16), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.CheckConstraint('points >= 0', name=op.f('ck_award_tallies_points')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_award_tallies_participant_id_participants')),
    sa.PrimaryKeyConstraint('participant_id', 'indicator_code', 'period', name=op.f('pk_award_tallies'))
    )
    op.create_table('import_jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('stored_name', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('total_rows', sa.Integer(), nullable=True),
    sa.Column('processed_rows', sa.Integer(), nullable=False),
    sa.Column('imported_rows', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scope_path', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued','validating','importing','done','failed')", name=op.f('ck_import_jobs_status')),
    sa.ForeignKeyConstraint(['created_by'], ['staff_users.id'], name=op.f('fk_import_jobs_created_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs'))
    )
    op.create_table('nominations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('honour', sa.String(length=30), nullable=False),
    sa.Column('township_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('participant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('nominated_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('nominated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("honour IN ('most_beautiful_family','loan_priority')", name=op.f('ck_nominations_honour')),
    sa.ForeignKeyConstraint(['nominated_by'], ['staff_users.id'], name=op.f('fk_nominations_nominated_by_staff_users')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_nominations_participant_id_participants')),
    sa.ForeignKeyConstraint(['township_id'], ['regions.id'], name=op.f('fk_nominations_township_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nominations')),
    sa.UniqueConstraint('year', 'honour', 'participant_id', name=op.f('uq_nominations_year_honour_participant_id'))
    )
    op.create_table('rule_sets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('notice_days', sa.SmallInteger(), nullable=False),
    sa.Column('grades', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('honours', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('draft','published')", name=op.f('ck_rule_sets_status')),
    sa.CheckConstraint('notice_days BETWEEN 0 AND 60', name=op.f('ck_rule_sets_notice_days')),
    sa.ForeignKeyConstraint(['created_by'], ['staff_users.id'], name=op.f('fk_rule_sets_created_by_staff_users')),
    sa.ForeignKeyConstraint(['published_by'], ['staff_users.id'], name=op.f('fk_rule_sets_published_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rule_sets')),
    sa.UniqueConstraint('version', name=op.f('uq_rule_sets_version'))
    )
    with op.batch_alter_table('rule_sets', schema=None) as batch_op:
        batch_op.create_index('ix_rule_sets_effective', ['status', 'effective_from'], unique=False)

    op.create_table('contributions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('indicator_code', sa.String(length=16), nullable=False),
    sa.Column('rule_set_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('work_date', sa.Date(), nullable=False),
    sa.Column('region_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('region_path', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('conflict_item', sa.String(length=10), nullable=True),
    sa.Column('warning_colour', sa.String(length=8), nullable=True),
    sa.Column('case_record', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('incident_key', sa.String(length=120), nullable=True),
    sa.Column('duplicate_of', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('duplicate_suspect', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('submitted_by_participant', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('submitted_by_staff', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('import_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('verified_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notice_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('proposed_points', sa.Integer(), nullable=True),
    sa.Column('explanation', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('posting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('awarded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("state IN ('submitted','verified','rejected','in_notice','awarded','revoked')", name=op.f('ck_contributions_state')),
    sa.CheckConstraint("warning_colour IS NULL OR warning_colour IN ('blue','yellow','orange','red')", name=op.f('ck_contributions_colour')),
    sa.CheckConstraint('quantity >= 1', name=op.f('ck_contributions_quantity')),
    sa.CheckConstraint('verified_by IS NULL OR submitted_by_staff IS NULL OR verified_by <> submitted_by_staff', name=op.f('ck_contributions_four_eyes')),
    sa.ForeignKeyConstraint(['import_id'], ['import_jobs.id'], name=op.f('fk_contributions_import_id_import_jobs')),
    sa.ForeignKeyConstraint(['posting_id'], ['postings.id'], name=op.f('fk_contributions_posting_id_postings')),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_contributions_region_id_regions')),
    sa.ForeignKeyConstraint(['revoked_by'], ['staff_users.id'], name=op.f('fk_contributions_revoked_by_staff_users')),
    sa.ForeignKeyConstraint(['rule_set_id'], ['rule_sets.id'], name=op.f('fk_contributions_rule_set_id_rule_sets')),
    sa.ForeignKeyConstraint(['submitted_by_participant'], ['participants.id'], name=op.f('fk_contributions_submitted_by_participant_participants')),
    sa.ForeignKeyConstraint(['submitted_by_staff'], ['staff_users.id'], name=op.f('fk_contributions_submitted_by_staff_staff_users')),
    sa.ForeignKeyConstraint(['verified_by'], ['staff_users.id'], name=op.f('fk_contributions_verified_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contributions'))
    )
    with op.batch_alter_table('contributions', schema=None) as batch_op:
        batch_op.create_index('ix_contributions_incident', ['indicator_code', 'incident_key'], unique=False)
        batch_op.create_index('ix_contributions_notice', ['state', 'notice_until'], unique=False)
        batch_op.create_index('ix_contributions_state', ['state', 'region_path'], unique=False)
        batch_op.create_index('uq_contributions_incident_holder', ['indicator_code', 'incident_key'], unique=True, postgresql_where=sa.text("incident_key IS NOT NULL AND state IN ('verified','in_notice','awarded')"), sqlite_where=sa.text("incident_key IS NOT NULL AND state IN ('verified','in_notice','awarded')"))

    op.create_table('indicators',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rule_set_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('class_', sa.String(length=12), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('base_points', sa.Integer(), nullable=False),
    sa.Column('unit', sa.String(length=12), nullable=False),
    sa.Column('multiplier', sa.String(length=20), nullable=True),
    sa.Column('multipliers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('cap_month', sa.Integer(), nullable=True),
    sa.Column('cap_year', sa.Integer(), nullable=True),
    sa.Column('cap_activity', sa.Integer(), nullable=True),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('requires', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.CheckConstraint("class_ IN ('information','mediation','promotion')", name=op.f('ck_indicators_class')),
    sa.CheckConstraint('base_points >= 0', name=op.f('ck_indicators_base_points')),
    sa.CheckConstraint('cap_activity IS NULL OR cap_activity >= 0', name=op.f('ck_indicators_cap_activity')),
    sa.CheckConstraint('cap_month IS NULL OR cap_month >= 0', name=op.f('ck_indicators_cap_month')),
    sa.CheckConstraint('cap_year IS NULL OR cap_year >= 0', name=op.f('ck_indicators_cap_year')),
    sa.ForeignKeyConstraint(['rule_set_id'], ['rule_sets.id'], name=op.f('fk_indicators_rule_set_id_rule_sets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_indicators')),
    sa.UniqueConstraint('rule_set_id', 'code', name=op.f('uq_indicators_rule_set_id_code'))
    )
    op.create_table('contribution_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contribution_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_state', sa.String(length=10), nullable=True),
    sa.Column('to_state', sa.String(length=10), nullable=False),
    sa.Column('actor_kind', sa.String(length=12), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('actor_label', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['contribution_id'], ['contributions.id'], name=op.f('fk_contribution_events_contribution_id_contributions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contribution_events'))
    )
    with op.batch_alter_table('contribution_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contribution_events_contribution_id'), ['contribution_id'], unique=False)

    op.create_table('contribution_members',
    sa.Column('contribution_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('participant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('share', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=True),
    sa.CheckConstraint('share >= 1', name=op.f('ck_contribution_members_share')),
    sa.ForeignKeyConstraint(['contribution_id'], ['contributions.id'], name=op.f('fk_contribution_members_contribution_id_contributions')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_contribution_members_participant_id_participants')),
    sa.PrimaryKeyConstraint('contribution_id', 'participant_id', name=op.f('pk_contribution_members'))
    )
    with op.batch_alter_table('contribution_members', schema=None) as batch_op:
        batch_op.create_index('ix_contribution_members_participant', ['participant_id'], unique=False)

    op.create_table('evidence_files',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contribution_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=60), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('uploaded_by_kind', sa.String(length=12), nullable=False),
    sa.Column('uploaded_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['contribution_id'], ['contributions.id'], name=op.f('fk_evidence_files_contribution_id_contributions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_files'))
    )
    with op.batch_alter_table('evidence_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_files_contribution_id'), ['contribution_id'], unique=False)

    op.create_table('objections',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contribution_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lodged_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('lodged_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('open','upheld','dismissed')", name=op.f('ck_objections_status')),
    sa.ForeignKeyConstraint(['contribution_id'], ['contributions.id'], name=op.f('fk_objections_contribution_id_contributions')),
    sa.ForeignKeyConstraint(['lodged_by'], ['participants.id'], name=op.f('fk_objections_lodged_by_participants')),
    sa.ForeignKeyConstraint(['resolved_by'], ['staff_users.id'], name=op.f('fk_objections_resolved_by_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_objections'))
    )
    with op.batch_alter_table('objections', schema=None) as batch_op:
        batch_op.create_index('ix_objections_open', ['contribution_id', 'status'], unique=False)

    _create_guards()


def _create_guards() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION jieyou_rules_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE parent BIGINT;
            BEGIN
                IF TG_TABLE_NAME = 'rule_sets' THEN
                    IF OLD.status = 'published' THEN
                        RAISE EXCEPTION 'published rule set % is frozen', OLD.version
                            USING ERRCODE = 'insufficient_privilege';
                    END IF;
                ELSE
                    IF TG_OP = 'INSERT' THEN parent := NEW.rule_set_id; ELSE parent := OLD.rule_set_id; END IF;
                    IF EXISTS (SELECT 1 FROM rule_sets WHERE id = parent AND status = 'published') THEN
                        RAISE EXCEPTION 'indicators of a published rule set are frozen'
                            USING ERRCODE = 'insufficient_privilege';
                    END IF;
                END IF;
                IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
                RETURN NEW;
            END $$""")
        op.execute("CREATE TRIGGER rule_sets_frozen BEFORE UPDATE OR DELETE ON rule_sets "
                   "FOR EACH ROW EXECUTE FUNCTION jieyou_rules_frozen()")
        op.execute("CREATE TRIGGER indicators_frozen BEFORE INSERT OR UPDATE OR DELETE ON indicators "
                   "FOR EACH ROW EXECUTE FUNCTION jieyou_rules_frozen()")
        op.execute("CREATE TRIGGER contribution_events_append_only BEFORE UPDATE OR DELETE ON contribution_events "
                   "FOR EACH ROW EXECUTE FUNCTION jieyou_refuse_change()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER rule_sets_frozen_{event.lower()} BEFORE {event} ON rule_sets "
                       f"WHEN OLD.status = 'published' BEGIN SELECT RAISE(ABORT, 'published rule set is frozen'); END")
            op.execute(f"CREATE TRIGGER indicators_frozen_{event.lower()} BEFORE {event} ON indicators "
                       f"WHEN (SELECT status FROM rule_sets WHERE id = OLD.rule_set_id) = 'published' "
                       f"BEGIN SELECT RAISE(ABORT, 'indicators of a published rule set are frozen'); END")
            op.execute(f"CREATE TRIGGER contribution_events_no_{event.lower()} BEFORE {event} ON contribution_events "
                       f"BEGIN SELECT RAISE(ABORT, 'table contribution_events is append-only: {event} refused'); END")
        op.execute("CREATE TRIGGER indicators_frozen_insert BEFORE INSERT ON indicators "
                   "WHEN (SELECT status FROM rule_sets WHERE id = NEW.rule_set_id) = 'published' "
                   "BEGIN SELECT RAISE(ABORT, 'indicators of a published rule set are frozen'); END")


def _drop_guards() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS rule_sets_frozen ON rule_sets")
        op.execute("DROP TRIGGER IF EXISTS indicators_frozen ON indicators")
        op.execute("DROP TRIGGER IF EXISTS contribution_events_append_only ON contribution_events")
        op.execute("DROP FUNCTION IF EXISTS jieyou_rules_frozen()")
    else:
        for name in ("rule_sets_frozen_update", "rule_sets_frozen_delete", "indicators_frozen_update",
                     "indicators_frozen_delete", "indicators_frozen_insert", "contribution_events_no_update",
                     "contribution_events_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def downgrade() -> None:
    _drop_guards()
    with op.batch_alter_table('objections', schema=None) as batch_op:
        batch_op.drop_index('ix_objections_open')

    op.drop_table('objections')
    with op.batch_alter_table('evidence_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_files_contribution_id'))

    op.drop_table('evidence_files')
    with op.batch_alter_table('contribution_members', schema=None) as batch_op:
        batch_op.drop_index('ix_contribution_members_participant')

    op.drop_table('contribution_members')
    with op.batch_alter_table('contribution_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contribution_events_contribution_id'))

    op.drop_table('contribution_events')
    op.drop_table('indicators')
    with op.batch_alter_table('contributions', schema=None) as batch_op:
        batch_op.drop_index('uq_contributions_incident_holder', postgresql_where=sa.text("incident_key IS NOT NULL AND state IN ('verified','in_notice','awarded')"), sqlite_where=sa.text("incident_key IS NOT NULL AND state IN ('verified','in_notice','awarded')"))
        batch_op.drop_index('ix_contributions_state')
        batch_op.drop_index('ix_contributions_notice')
        batch_op.drop_index('ix_contributions_incident')

    op.drop_table('contributions')
    with op.batch_alter_table('rule_sets', schema=None) as batch_op:
        batch_op.drop_index('ix_rule_sets_effective')

    op.drop_table('rule_sets')
    op.drop_table('nominations')
    op.drop_table('import_jobs')
    op.drop_table('award_tallies')
