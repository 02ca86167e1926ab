"""Scoring: the award job's claim runs without JIT compilation.

Why (auto_explain of the last award batch of 100,000): the claim's plan is estimated far above
`jit_above_cost` (the members' lookup is costed at a thousand rows per contribution while it finds
one), so every call of `scoring_claim_awards` compiled its expressions first: 20 ms of a 76 ms
call (Emission 17.6 ms) for a batch of 2,000, once the tables had grown past about 50,000 rows.
The plan is walked once per call and SQL functions plan on every call, so the compiled code is
never reused: the function now plans with JIT off (its own setting, restored on return, as
enable_bitmapscan is).

Revision ID: 0013
Revises: 0011
Create Date: 2026-11-29 16:30:00
"""
from alembic import op

revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None

CLAIM = "scoring_claim_awards(timestamptz, int, varchar, bigint, varchar, timestamptz, text)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER FUNCTION {CLAIM} SET jit = off")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER FUNCTION {CLAIM} RESET jit")
