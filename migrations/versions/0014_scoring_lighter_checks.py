"""Scoring: the award claim aggregates its members without a sort per contribution; the scoring
tables' reference checks reach their rows through bitmap scans.

Why (`EXPLAIN ANALYZE` of the award claim and the scoring triggers on batches of 2,000):

- The claim gathered each contribution's members with three `array_agg(... ORDER BY
  participant_id)`: an ordered aggregate sorts its input, so every contribution paid three sorts
  of (mostly) one row. The members now come from a subquery ordered by participant, which the
  primary key's index scan returns in that order with no sort, and plain aggregates keep it
  (claim 16-20 ms -> 12.5 ms per 2,000).
- The statement-level reference checks (0006, 0009) count the statement's distinct ids in the
  referenced table. Left to the planner, with no statistics yet (or stale ones: the tables grow by
  thousands of rows per batch), the posting check read the whole postings table (15 ms against
  1.5 ms), the participants' FOR KEY SHARE read the whole participants table (3.9 ms against
  1.7 ms), and the events' check on contributions walked the primary key's entries of every row
  version with a heap fetch each (5.5 ms against 1.9 ms; verification and award update each
  contribution, so its key has several entries). A bitmap scan visits each page once, in order,
  whatever the number of ids: the functions plan with sequential and plain index scans off (their
  own settings, restored on return, as 0009's claim and 0012's chain write do). The checks and
  their locks are unchanged.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 18:40:00
"""
from alembic import op

from migrations.earlier import revision_module

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

SIGNATURE = "scoring_claim_awards(timestamptz, int, varchar, bigint, varchar, timestamptz, text)"
_EARLIER = revision_module("0013_scoring_claim_without_jit.py").CLAIM_AWARDS

_ORDERED_AGGREGATES = """
        SELECT array_agg(cm.participant_id ORDER BY cm.participant_id) AS pids,
               array_agg(cm.points ORDER BY cm.participant_id) AS points,
               array_agg((SELECT a.id FROM accounts a WHERE a.participant_id = cm.participant_id)
                         ORDER BY cm.participant_id) AS accounts,
               coalesce(bool_or(cm.points <> 0), false) AS any_points
        FROM contribution_members cm WHERE cm.contribution_id = claimed.id) AS m),"""
# An aggregate over a sorted subquery, with nothing joined at its level, takes the rows in that
# order (PostgreSQL's documentation of array_agg and friends gives this form).
_PRESORTED_AGGREGATES = """
        SELECT array_agg(s.participant_id) AS pids, array_agg(s.points) AS points,
               array_agg(s.account) AS accounts, coalesce(bool_or(s.points <> 0), false) AS any_points
        FROM (SELECT cm.participant_id, cm.points,
                     (SELECT a.id FROM accounts a WHERE a.participant_id = cm.participant_id) AS account
              FROM contribution_members cm WHERE cm.contribution_id = claimed.id
              ORDER BY cm.participant_id) AS s) AS m),"""
CLAIM_AWARDS = _EARLIER.replace(_ORDERED_AGGREGATES, _PRESORTED_AGGREGATES)
assert CLAIM_AWARDS.count("ORDER BY cm.participant_id) AS s") == 1, \
    "0013's claim text changed: update this migration"

# Trigger functions whose id checks should reach their rows by bitmap scans.
CHECKS = ("jieyou_contributions_references()", "jieyou_contribution_events_references()",
          "jieyou_award_tallies_references()")
# Bitmap scans on explicitly: the claim, whose insert of events fires one of them, plans without.
BITMAP_ONLY = ("SET enable_bitmapscan = on SET enable_seqscan = off SET enable_indexscan = off "
               "SET enable_indexonlyscan = off")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {SIGNATURE}")
    op.execute(CLAIM_AWARDS)
    for function in CHECKS:
        op.execute(f"ALTER FUNCTION {function} {BITMAP_ONLY}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function in CHECKS:
        op.execute(f"ALTER FUNCTION {function} RESET ALL")
    op.execute(f"DROP FUNCTION {SIGNATURE}")
    op.execute(_EARLIER)
