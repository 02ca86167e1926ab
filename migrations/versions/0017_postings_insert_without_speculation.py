"""Ledger: a batch inserts its postings plainly and falls back to ON CONFLICT only on a clash.

Why: `INSERT ... ON CONFLICT DO NOTHING` inserts every row speculatively (the unique index is
probed, the heap tuple written with a speculative token, the index entries made, then the
insertion confirmed), which cost a batch of 1,000 postings 7.6-8.7 ms against 4.7-6.7 for a plain
insert of the same rows (same host, in turns). A reused idempotency key is rare, so
`ledger_insert_postings` inserts plainly inside a subtransaction and, only when a key clashes
(a retry, or a duplicate that was in flight and has committed), rolls that back and inserts with
ON CONFLICT DO NOTHING as before: the caller sees the same rows either way, and a duplicate in
flight still waits for the first to commit or abort. Any other unique violation (a second
reversal of one posting) is raised by the fallback as before. The single posting
(`ledger_post_one`) keeps ON CONFLICT: one row does not pay for a subtransaction.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 22:50:00
"""
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

COLUMNS = ("kind", "reason", "source_type", "source_id", "meta", "effective_at", "idem_key", "request_digest",
           "reverses_id")
TYPES = ("text", "text", "text", "text", "jsonb", "timestamptz", "text", "text", "bigint")
SHARED = ("actor_kind", "actor_id", "actor_label", "created_at", "idem_scope")
SHARED_TYPES = ("text", "bigint", "text", "timestamptz", "text")


def _insert(on_conflict: str) -> str:
    return (f"WITH added AS (INSERT INTO postings ({', '.join(COLUMNS + SHARED)}) "
            f"SELECT v.*, {', '.join('p_' + c for c in SHARED)} "
            f"FROM unnest({', '.join('p_' + c for c in COLUMNS)}) AS v({', '.join(COLUMNS)}) {on_conflict}"
            "RETURNING postings.id, postings.idem_key::text) SELECT * FROM added")


INSERT_POSTINGS = f"""
CREATE FUNCTION ledger_insert_postings(
    {', '.join(f'p_{c} {t}' for c, t in zip(SHARED, SHARED_TYPES))},
    {', '.join(f'p_{c} {t}[]' for c, t in zip(COLUMNS, TYPES))})
RETURNS TABLE(out_id bigint, out_key text) LANGUAGE plpgsql AS $fn$
BEGIN
    BEGIN
        RETURN QUERY {_insert('')};
    EXCEPTION WHEN unique_violation THEN
        -- A key already taken (a retry, or a duplicate in flight that has since committed): the
        -- plain insert is undone with its subtransaction; insert the others, skip the taken ones.
        RETURN QUERY {_insert('ON CONFLICT ON CONSTRAINT uq_postings_idem_scope_idem_key DO NOTHING ')};
    END;
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(INSERT_POSTINGS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION ledger_insert_postings")
