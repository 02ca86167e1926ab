"""Scoring: verification's references checked once per statement; room for HOT updates.

Why (auto_explain of a 2,000-contribution verification): the per-row foreign keys fired 2,000
checks each for `contributions.rule_set_id` and `verified_by` (both go from NULL to a value at
verification) and one per new tally for `award_tallies.participant_id`, each a query of its own;
together they cost about as much as the writes. On PostgreSQL they are now checked once per
statement, as migration 0006 does for `posting_id`: the statement's distinct ids are looked up in
one query that takes the same FOR KEY SHARE locks a foreign key takes, so a concurrent delete of a
referenced row still waits for the writer and then sees its rows. The referenced side refuses a
delete (or an id change) while a contribution or tally still names the row, as NO ACTION did.

Members and tallies keep room on their pages (fillfactor 50): verification rewrites every member
row (its points) and every tally it touches, and with room on the page those updates are HOT (no
new index entries). Contributions are not given room: their state is indexed, so their updates
could not be HOT anyway.

The award job's claim becomes a function (`scoring_claim_awards`) so that its plan no longer
depends on fresh statistics: right after a bulk verification the table's statistics still say no
row is on notice, and the planner read every row due (a bitmap scan), sorted them all by notice
end and kept the first 2,000, for every batch: a run of n awards cost n squared. The function
plans without bitmap scans (its own setting, restored on return), so the notice index is walked in
order and the scan stops at the batch size; each claimed row's members and their accounts are
looked up by index (LATERAL and a scalar subquery, which no estimate can turn into a hash of both
tables whole), and nothing joins one CTE to another (estimated at one row each, they met in a
nested loop of 2,000 by 2,000).

SQLite keeps its foreign keys and the award job's portable path.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 14:30:00
"""
from alembic import op

from migrations.earlier import revision_module

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

FOREIGN_KEYS = (  # (constraint, table, column, referenced table)
    ("fk_contributions_rule_set_id_rule_sets", "contributions", "rule_set_id", "rule_sets"),
    ("fk_contributions_verified_by_staff_users", "contributions", "verified_by", "staff_users"),
    ("fk_award_tallies_participant_id_participants", "award_tallies", "participant_id", "participants"),
)

# 0006's check, now also for the rule set and the verifier, in one pass over the statement's rows.
CONTRIBUTION_REFERENCES = r"""
CREATE OR REPLACE FUNCTION jieyou_contributions_references() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    posting_ids bigint[];
    rule_set_ids bigint[];
    verifier_ids bigint[];
BEGIN
    SELECT array_agg(DISTINCT posting_id) FILTER (WHERE posting_id IS NOT NULL),
           array_agg(DISTINCT rule_set_id) FILTER (WHERE rule_set_id IS NOT NULL),
           array_agg(DISTINCT verified_by) FILTER (WHERE verified_by IS NOT NULL)
      INTO posting_ids, rule_set_ids, verifier_ids FROM new_contributions;
    IF posting_ids IS NOT NULL
       AND (SELECT count(*) FROM postings WHERE id = ANY(posting_ids)) <> cardinality(posting_ids) THEN
        RAISE EXCEPTION 'a contribution names a posting that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF rule_set_ids IS NOT NULL AND (SELECT count(*) FROM (SELECT FROM rule_sets WHERE id = ANY(rule_set_ids)
                                                           FOR KEY SHARE) AS r) <> cardinality(rule_set_ids) THEN
        RAISE EXCEPTION 'a contribution names a rule set that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF verifier_ids IS NOT NULL AND (SELECT count(*) FROM (SELECT FROM staff_users WHERE id = ANY(verifier_ids)
                                                           FOR KEY SHARE) AS s) <> cardinality(verifier_ids) THEN
        RAISE EXCEPTION 'a contribution names a verifier that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$fn$
"""

# Only rows the upsert inserted: an update of a tally never changes its participant.
TALLY_REFERENCES = r"""
CREATE FUNCTION jieyou_award_tallies_references() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    ids bigint[];
BEGIN
    SELECT array_agg(DISTINCT participant_id) INTO ids FROM new_tallies;
    IF ids IS NOT NULL AND (SELECT count(*) FROM (SELECT FROM participants WHERE id = ANY(ids) FOR KEY SHARE) AS p)
                           <> cardinality(ids) THEN
        RAISE EXCEPTION 'a tally names a participant that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$fn$
"""
# The referenced side: a row still named may not go, nor change its id (NO ACTION, as the keys did).
STILL_NAMED = r"""
CREATE FUNCTION jieyou_still_named() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    named boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    named := CASE TG_TABLE_NAME
                 WHEN 'participants' THEN EXISTS (SELECT FROM award_tallies WHERE participant_id = OLD.id)
                 WHEN 'rule_sets' THEN EXISTS (SELECT FROM contributions WHERE rule_set_id = OLD.id)
                 ELSE EXISTS (SELECT FROM contributions WHERE verified_by = OLD.id) END;
    IF named THEN
        RAISE EXCEPTION '% % is still referenced', TG_TABLE_NAME, OLD.id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$fn$
"""
REFERENCED = ("participants", "rule_sets", "staff_users")

# The award job's claim (was `awards._CLAIM_PG`): claim in notice order (SKIP LOCKED), each one's
# members in participant order with their accounts, and the events of the transition.
CLAIM_AWARDS = r"""
CREATE FUNCTION scoring_claim_awards(p_now timestamptz, p_limit int, p_actor_kind varchar, p_actor_id bigint,
                                     p_actor_label varchar, p_at timestamptz, p_empty_note text)
RETURNS TABLE (r_id bigint, r_indicator_code varchar, r_description text, r_notice_until timestamptz,
               r_explanation jsonb, r_pids bigint[], r_points int[], r_accounts bigint[])
LANGUAGE sql VOLATILE SET enable_bitmapscan = off AS $fn$
WITH claimed AS (
    SELECT c.id, c.indicator_code, c.description, c.notice_until, c.explanation FROM contributions c
    WHERE c.state = 'in_notice' AND c.notice_until <= p_now
      AND NOT EXISTS (SELECT FROM objections o WHERE o.contribution_id = c.id AND o.status = 'open')
    ORDER BY c.notice_until LIMIT p_limit FOR UPDATE OF c SKIP LOCKED),
batch AS (
    SELECT claimed.*, m.pids, m.points, m.accounts, m.any_points
    FROM claimed CROSS JOIN LATERAL (
        SELECT array_agg(cm.participant_id ORDER BY cm.participant_id) AS pids,
               array_agg(cm.points ORDER BY cm.participant_id) AS points,
               array_agg((SELECT a.id FROM accounts a WHERE a.participant_id = cm.participant_id)
                         ORDER BY cm.participant_id) AS accounts,
               coalesce(bool_or(cm.points <> 0), false) AS any_points
        FROM contribution_members cm WHERE cm.contribution_id = claimed.id) AS m),
events AS (
    INSERT INTO contribution_events (contribution_id, from_state, to_state, actor_kind, actor_id, actor_label, at, note)
    SELECT batch.id, 'in_notice', 'awarded', p_actor_kind, p_actor_id, p_actor_label, p_at,
           CASE WHEN batch.any_points THEN NULL ELSE p_empty_note END
    FROM batch ORDER BY batch.id)
SELECT id, indicator_code, description, notice_until, explanation, pids, points, accounts FROM batch ORDER BY id
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, _column, _target in FOREIGN_KEYS:
        op.drop_constraint(name, table, type_="foreignkey")
    op.execute(CONTRIBUTION_REFERENCES)
    op.execute(TALLY_REFERENCES)
    op.execute("CREATE TRIGGER award_tallies_references AFTER INSERT ON award_tallies "
               "REFERENCING NEW TABLE AS new_tallies "
               "FOR EACH STATEMENT EXECUTE FUNCTION jieyou_award_tallies_references()")
    op.execute(STILL_NAMED)
    for table in REFERENCED:
        # Row-level, as the keys' own checks were: deletes and id changes are rare on these tables.
        op.execute(f"CREATE TRIGGER {table}_still_named BEFORE DELETE OR UPDATE OF id ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION jieyou_still_named()")
    op.execute("ALTER TABLE contribution_members SET (fillfactor = 50)")
    op.execute("ALTER TABLE award_tallies SET (fillfactor = 50)")
    op.execute(CLAIM_AWARDS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION scoring_claim_awards(timestamptz, int, varchar, bigint, varchar, timestamptz, text)")
    op.execute("ALTER TABLE award_tallies RESET (fillfactor)")
    op.execute("ALTER TABLE contribution_members RESET (fillfactor)")
    for table in REFERENCED:
        op.execute(f"DROP TRIGGER {table}_still_named ON {table}")
    op.execute("DROP FUNCTION jieyou_still_named()")
    op.execute("DROP TRIGGER award_tallies_references ON award_tallies")
    op.execute("DROP FUNCTION jieyou_award_tallies_references()")
    # 0006 created it; the downgrade puts its text back
    op.execute(revision_module("0006_scoring_bulk.py").CONTRIBUTION_REFERENCES
               .replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    for name, table, column, target in FOREIGN_KEYS:
        op.create_foreign_key(name, table, target, [column], ["id"])
