"""Ledger foundation: identities, accounts, postings, entries, balances, chains, checks, audit.

Append-only tables (entries, postings, audit_log, chain_digests, ledger_checks) get triggers that
refuse UPDATE and DELETE, on PostgreSQL and on SQLite.

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 07:12:56.862892
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

APPEND_ONLY = ("entries", "postings", "audit_log", "chain_digests", "ledger_checks")

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_kind', sa.String(length=12), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('actor_label', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=True),
    sa.Column('object_id', sa.String(length=40), nullable=True),
    sa.Column('region_path', sa.String(length=200), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_actor', ['actor_kind', 'actor_id'], unique=False)
        batch_op.create_index('ix_audit_log_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_log_object', ['object_type', 'object_id'], unique=False)

    op.create_table('auth_tokens',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('subject_kind', sa.String(length=12), nullable=False),
    sa.Column('subject_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("subject_kind IN ('staff','participant')", name=op.f('ck_auth_tokens_subject_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_tokens')),
    sa.UniqueConstraint('token_digest', name=op.f('uq_auth_tokens_token_digest'))
    )
    op.create_table('chain_digests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('chain_count', sa.Integer(), nullable=False),
    sa.Column('entry_count', sa.BigInteger(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('heads', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_digests')),
    sa.UniqueConstraint('day', name=op.f('uq_chain_digests_day'))
    )
    op.create_table('ledger_checks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('period_key', sa.String(length=20), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('stats', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('problems', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.CheckConstraint("kind IN ('verify','reconcile')", name=op.f('ck_ledger_checks_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_checks')),
    sa.UniqueConstraint('kind', 'period_key', name=op.f('uq_ledger_checks_kind_period_key'))
    )
    op.create_table('postings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('actor_kind', sa.String(length=12), nullable=False),
    sa.Column('actor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('actor_label', sa.String(length=100), nullable=False),
    sa.Column('source_type', sa.String(length=40), nullable=True),
    sa.Column('source_id', sa.String(length=40), nullable=True),
    sa.Column('meta', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('effective_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('idem_scope', sa.String(length=60), nullable=False),
    sa.Column('idem_key', sa.String(length=100), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=False),
    sa.Column('reverses_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("(kind = 'reversal') = (reverses_id IS NOT NULL)", name=op.f('ck_postings_reversal_link')),
    sa.CheckConstraint("kind IN ('award','redemption','refund','reversal','adjustment','hold','release')", name=op.f('ck_postings_kind')),
    sa.CheckConstraint('length(reason) > 0', name=op.f('ck_postings_reason_required')),
    sa.ForeignKeyConstraint(['reverses_id'], ['postings.id'], name=op.f('fk_postings_reverses_id_postings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_postings')),
    sa.UniqueConstraint('idem_scope', 'idem_key', name=op.f('uq_postings_idem_scope_idem_key')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_postings_reverses_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index('ix_postings_effective_at', ['effective_at'], unique=False)
        batch_op.create_index('ix_postings_source', ['source_type', 'source_id'], unique=False)

    op.create_table('regions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=True),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('path', sa.String(length=200), nullable=False),
    sa.CheckConstraint("level IN ('county','township','village','grid')", name=op.f('ck_regions_level')),
    sa.ForeignKeyConstraint(['parent_id'], ['regions.id'], name=op.f('fk_regions_parent_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regions')),
    sa.UniqueConstraint('code', name=op.f('uq_regions_code'))
    )
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.create_index('ix_regions_path', ['path'], unique=False)

    op.create_table('participants',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('region_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('region_path', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_participants_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participants')),
    sa.UniqueConstraint('phone', name=op.f('uq_participants_phone'))
    )
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.create_index('ix_participants_region_path', ['region_path'], unique=False)

    op.create_table('partners',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=True),
    sa.Column('region_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_partners_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partners')),
    sa.UniqueConstraint('code', name=op.f('uq_partners_code'))
    )
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('participant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('shard_count', sa.SmallInteger(), nullable=False),
    sa.Column('allow_negative', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind <> 'participant' OR (participant_id IS NOT NULL AND NOT allow_negative)", name=op.f('ck_accounts_participant_never_negative')),
    sa.CheckConstraint('shard_count BETWEEN 1 AND 256', name=op.f('ck_accounts_shard_count')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_accounts_participant_id_participants')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_accounts_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('code', name=op.f('uq_accounts_code')),
    sa.UniqueConstraint('participant_id', name=op.f('uq_accounts_participant_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_partner_id'), ['partner_id'], unique=False)

    op.create_table('outlets',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('partner_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=True),
    sa.Column('region_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_outlets_partner_id_partners')),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_outlets_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outlets'))
    )
    with op.batch_alter_table('outlets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outlets_partner_id'), ['partner_id'], unique=False)

    op.create_table('staff_users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('username', sa.String(length=50), nullable=False),
    sa.Column('display_name', sa.String(length=50), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('scope_region_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('participant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('clerk','verifier','approver','auditor','admin')", name=op.f('ck_staff_users_role')),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_staff_users_participant_id_participants')),
    sa.ForeignKeyConstraint(['scope_region_id'], ['regions.id'], name=op.f('fk_staff_users_scope_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_users_username'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('outlet_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_digest', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=True),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff_users.id'], name=op.f('fk_api_keys_created_by_staff_users')),
    sa.ForeignKeyConstraint(['outlet_id'], ['outlets.id'], name=op.f('fk_api_keys_outlet_id_outlets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_digest', name=op.f('uq_api_keys_key_digest'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_outlet_id'), ['outlet_id'], unique=False)

    op.create_table('approval_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('posting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('region_path', sa.String(length=200), nullable=False),
    sa.Column('requested_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=True),
    sa.Column('result_posting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('idem_key', sa.String(length=100), nullable=True),
    sa.CheckConstraint("kind <> 'adjustment' OR (account_id IS NOT NULL AND amount IS NOT NULL AND amount <> 0)", name=op.f('ck_approval_requests_adjustment_fields')),
    sa.CheckConstraint("kind <> 'reversal' OR posting_id IS NOT NULL", name=op.f('ck_approval_requests_reversal_fields')),
    sa.CheckConstraint("kind IN ('adjustment','reversal')", name=op.f('ck_approval_requests_kind')),
    sa.CheckConstraint("status IN ('pending','approved','rejected','failed')", name=op.f('ck_approval_requests_status')),
    sa.CheckConstraint('decided_by IS NULL OR decided_by <> requested_by', name=op.f('ck_approval_requests_four_eyes')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_approval_requests_account_id_accounts')),
    sa.ForeignKeyConstraint(['decided_by'], ['staff_users.id'], name=op.f('fk_approval_requests_decided_by_staff_users')),
    sa.ForeignKeyConstraint(['posting_id'], ['postings.id'], name=op.f('fk_approval_requests_posting_id_postings')),
    sa.ForeignKeyConstraint(['requested_by'], ['staff_users.id'], name=op.f('fk_approval_requests_requested_by_staff_users')),
    sa.ForeignKeyConstraint(['result_posting_id'], ['postings.id'], name=op.f('fk_approval_requests_result_posting_id_postings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_requests')),
    sa.UniqueConstraint('idem_key', name=op.f('uq_approval_requests_idem_key'))
    )
    with op.batch_alter_table('approval_requests', schema=None) as batch_op:
        batch_op.create_index('ix_approval_requests_status', ['status'], unique=False)

    op.create_table('balances',
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shard', sa.SmallInteger(), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('allow_negative', sa.Boolean(), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('allow_negative OR balance >= 0', name=op.f('ck_balances_non_negative')),
    sa.CheckConstraint('last_seq >= 0', name=op.f('ck_balances_seq')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_balances_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'shard', name=op.f('pk_balances'))
    )
    op.create_table('entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('posting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('shard', sa.SmallInteger(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('effective_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_entries_non_zero')),
    sa.CheckConstraint('seq >= 1', name=op.f('ck_entries_seq')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_entries_account_id_accounts')),
    sa.ForeignKeyConstraint(['posting_id'], ['postings.id'], name=op.f('fk_entries_posting_id_postings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entries')),
    sa.UniqueConstraint('account_id', 'shard', 'seq', name=op.f('uq_entries_account_id_shard_seq')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index('ix_entries_account_effective', ['account_id', 'effective_at'], unique=False)
        batch_op.create_index('ix_entries_account_id_desc', ['account_id', 'id'], unique=False)
        batch_op.create_index('ix_entries_posting', ['posting_id'], unique=False)

    _create_guards()


def _create_guards() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION jieyou_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END $$""")
        op.execute("""
            CREATE FUNCTION jieyou_refuse_reversal_of_reversal() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.reverses_id IS NOT NULL AND
                   (SELECT kind FROM postings WHERE id = NEW.reverses_id) = 'reversal' THEN
                    RAISE EXCEPTION 'a reversal cannot be reversed' USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END $$""")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION jieyou_refuse_change()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION jieyou_refuse_change()")
        op.execute("CREATE TRIGGER postings_no_reversal_of_reversal BEFORE INSERT ON postings FOR EACH ROW "
                   "WHEN (NEW.reverses_id IS NOT NULL) EXECUTE FUNCTION jieyou_refuse_reversal_of_reversal()")
        # Balance rows are rewritten by every posting: leave room on each page so updates stay HOT
        # (no index churn, little bloat) and let autovacuum keep up, so a balance read stays one
        # small-page lookup however many entries the ledger holds.
        op.execute("ALTER TABLE balances SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.02, "
                   "autovacuum_analyze_scale_factor = 0.05)")
    else:
        for table in APPEND_ONLY:
            for op_name in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{op_name.lower()} BEFORE {op_name} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only: {op_name} refused'); END")
        op.execute("CREATE TRIGGER postings_no_reversal_of_reversal BEFORE INSERT ON postings "
                   "WHEN NEW.reverses_id IS NOT NULL AND "
                   "(SELECT kind FROM postings WHERE id = NEW.reverses_id) = 'reversal' "
                   "BEGIN SELECT RAISE(ABORT, 'a reversal cannot be reversed'); END")


def _drop_guards() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP TRIGGER IF EXISTS postings_no_reversal_of_reversal ON postings")
        op.execute("DROP FUNCTION IF EXISTS jieyou_refuse_change()")
        op.execute("DROP FUNCTION IF EXISTS jieyou_refuse_reversal_of_reversal()")
    else:
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        op.execute("DROP TRIGGER IF EXISTS postings_no_reversal_of_reversal")


def downgrade() -> None:
    _drop_guards()
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index('ix_entries_posting')
        batch_op.drop_index('ix_entries_account_id_desc')
        batch_op.drop_index('ix_entries_account_effective')

    op.drop_table('entries')
    op.drop_table('balances')
    with op.batch_alter_table('approval_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_approval_requests_status')

    op.drop_table('approval_requests')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_outlet_id'))

    op.drop_table('api_keys')
    op.drop_table('staff_users')
    with op.batch_alter_table('outlets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outlets_partner_id'))

    op.drop_table('outlets')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_partner_id'))

    op.drop_table('accounts')
    op.drop_table('partners')
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_index('ix_participants_region_path')

    op.drop_table('participants')
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_index('ix_regions_path')

    op.drop_table('regions')
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.drop_index('ix_postings_source')
        batch_op.drop_index('ix_postings_effective_at')

    op.drop_table('postings')
    op.drop_table('ledger_checks')
    op.drop_table('chain_digests')
    op.drop_table('auth_tokens')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_object')
        batch_op.drop_index('ix_audit_log_at')
        batch_op.drop_index('ix_audit_log_actor')

    op.drop_table('audit_log')
