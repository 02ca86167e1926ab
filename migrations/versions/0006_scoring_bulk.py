"""Scoring: lighter writes for bulk verification and award.

Why (measured with auto_explain on batches of 2,000): the award's `UPDATE contributions SET
posting_id` spent more time in its per-row foreign-key check against the (large, just written)
postings table than in the update itself, and every event row paid a check against contributions.
On PostgreSQL both references are now checked once per statement, as the ledger checks an entry's
posting and account (0004): the ids of the whole statement are collected and counted with one
index scan. The referenced rows cannot disappear meanwhile: postings refuse DELETE and TRUNCATE,
and now so do contributions (nothing deletes one; its events, members and objections are its
history).

Indexes: most contributions have no incident number, and only the award job reads contributions on
notice by notice end; as partial indexes they are not written for the other rows (a contribution
is written twice, at verification and at award, so each index entry saved is saved twice).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 12:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# Both checks: a few rows are probed one by one; many are collected first and counted with one
# index scan, so a plan never reads a whole table.
CONTRIBUTION_REFERENCES = r"""
CREATE FUNCTION jieyou_contributions_references() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    ids bigint[];
BEGIN
    SELECT array_agg(DISTINCT posting_id) INTO ids FROM new_contributions WHERE posting_id IS NOT NULL;
    IF ids IS NOT NULL AND (SELECT count(*) FROM postings WHERE id = ANY(ids)) <> cardinality(ids) THEN
        RAISE EXCEPTION 'a contribution names a posting that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$fn$
"""
EVENT_REFERENCES = r"""
CREATE FUNCTION jieyou_contribution_events_references() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    ids bigint[];
BEGIN
    SELECT array_agg(DISTINCT contribution_id) INTO ids FROM new_events;
    IF ids IS NOT NULL AND (SELECT count(*) FROM contributions WHERE id = ANY(ids)) <> cardinality(ids) THEN
        RAISE EXCEPTION 'a contribution event names a contribution that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$fn$
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table('contributions', schema=None) as batch_op:
        batch_op.drop_index('ix_contributions_notice')
        batch_op.drop_index('ix_contributions_incident')
        batch_op.create_index('ix_contributions_notice', ['notice_until'], unique=False,
                              postgresql_where=sa.text("state = 'in_notice'"),
                              sqlite_where=sa.text("state = 'in_notice'"))
        batch_op.create_index('ix_contributions_incident', ['indicator_code', 'incident_key'], unique=False,
                              postgresql_where=sa.text("incident_key IS NOT NULL"),
                              sqlite_where=sa.text("incident_key IS NOT NULL"))
    if postgres:
        op.drop_constraint("fk_contributions_posting_id_postings", "contributions", type_="foreignkey")
        op.drop_constraint("fk_contribution_events_contribution_id_contributions", "contribution_events",
                           type_="foreignkey")
        op.execute(CONTRIBUTION_REFERENCES)
        op.execute(EVENT_REFERENCES)
        op.execute("CREATE TRIGGER contributions_references AFTER UPDATE ON contributions "
                   "REFERENCING NEW TABLE AS new_contributions "
                   "FOR EACH STATEMENT EXECUTE FUNCTION jieyou_contributions_references()")
        # A trigger with transition tables takes one event: inserts get their own.
        op.execute("CREATE TRIGGER contributions_references_insert AFTER INSERT ON contributions "
                   "REFERENCING NEW TABLE AS new_contributions "
                   "FOR EACH STATEMENT EXECUTE FUNCTION jieyou_contributions_references()")
        op.execute("CREATE TRIGGER contribution_events_references AFTER INSERT ON contribution_events "
                   "REFERENCING NEW TABLE AS new_events "
                   "FOR EACH STATEMENT EXECUTE FUNCTION jieyou_contribution_events_references()")
        op.execute("CREATE TRIGGER contributions_no_delete BEFORE DELETE ON contributions "
                   "FOR EACH ROW EXECUTE FUNCTION jieyou_refuse_change()")
        op.execute("CREATE TRIGGER contributions_no_truncate BEFORE TRUNCATE ON contributions "
                   "FOR EACH STATEMENT EXECUTE FUNCTION jieyou_refuse_change()")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER contributions_no_truncate ON contributions")
        op.execute("DROP TRIGGER contributions_no_delete ON contributions")
        op.execute("DROP TRIGGER contribution_events_references ON contribution_events")
        op.execute("DROP TRIGGER contributions_references_insert ON contributions")
        op.execute("DROP TRIGGER contributions_references ON contributions")
        op.execute("DROP FUNCTION jieyou_contribution_events_references()")
        op.execute("DROP FUNCTION jieyou_contributions_references()")
        op.create_foreign_key("fk_contribution_events_contribution_id_contributions", "contribution_events",
                              "contributions", ["contribution_id"], ["id"])
        op.create_foreign_key("fk_contributions_posting_id_postings", "contributions", "postings",
                              ["posting_id"], ["id"])
    with op.batch_alter_table('contributions', schema=None) as batch_op:
        batch_op.drop_index('ix_contributions_incident', postgresql_where=sa.text("incident_key IS NOT NULL"),
                            sqlite_where=sa.text("incident_key IS NOT NULL"))
        batch_op.drop_index('ix_contributions_notice', postgresql_where=sa.text("state = 'in_notice'"),
                            sqlite_where=sa.text("state = 'in_notice'"))
        batch_op.create_index('ix_contributions_incident', ['indicator_code', 'incident_key'], unique=False)
        batch_op.create_index('ix_contributions_notice', ['state', 'notice_until'], unique=False)
