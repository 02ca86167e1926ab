"""Scoring: the award job's claim runs without JIT and returns only what the posting needs.

Why (auto_explain of the last award batch of 100,000): the claim's plan is estimated far above
`jit_above_cost` (the members' lookup is costed at a thousand rows per contribution while it finds
one), so every call of `scoring_claim_awards` compiled its expressions first: 20 ms of a 76 ms
call (Emission 17.6 ms) for a batch of 2,000, once the tables had grown past about 50,000 rows.
SQL functions plan on every call, so the compiled code was never reused: the function now plans
with JIT off (its own setting, restored on return, as enable_bitmapscan is).

An award's posting no longer carries the explanation's words in two languages for every member
(the participant's statement reads them from the contribution, its source): the claim returns the
indicator's Chinese name and the rule version from the explanation instead of the whole document,
which the award job parsed only to write those words.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 16:30:00
"""
from alembic import op

from migrations.earlier import revision_module

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

SIGNATURE = "scoring_claim_awards(timestamptz, int, varchar, bigint, varchar, timestamptz, text)"
_EARLIER = revision_module("0009_scoring_statement_references.py").CLAIM_AWARDS

CLAIM_AWARDS = (
    _EARLIER
    .replace("r_explanation jsonb,", "r_name_zh text, r_rule_version int,")
    .replace("SET enable_bitmapscan = off", "SET enable_bitmapscan = off SET jit = off")
    .replace("SELECT id, indicator_code, description, notice_until, explanation, pids, points, accounts FROM batch",
             "SELECT id, indicator_code, description, notice_until, explanation->>'name_zh', "
             "(explanation->>'rule_version')::int, pids, points, accounts FROM batch"))
assert CLAIM_AWARDS.count("r_name_zh") == 1 and CLAIM_AWARDS.count("jit = off") == 1 \
    and CLAIM_AWARDS.count("->>'rule_version'") == 1, "0009's claim text changed: update this migration"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {SIGNATURE}")  # its result columns change
        op.execute(CLAIM_AWARDS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {SIGNATURE}")
        op.execute(_EARLIER)
