"""Ledger: a reversal's link is checked by the insert trigger that already reads the reversed
posting, not by a per-row foreign key.

Why: the foreign key on `postings.reverses_id` queued an after-trigger event for every posting
inserted, reversal or not: a batch of 1,000 awards paid 1,000 of them (about 1.3 ms under
auto_explain), though only reversals name a posting. The BEFORE INSERT trigger
`postings_no_reversal_of_reversal` fires only for reversals (WHEN reverses_id IS NOT NULL) and
already reads the reversed posting; it now also refuses a link to a posting that does not exist,
with the foreign key's SQLSTATE (foreign_key_violation). The reversed posting cannot disappear
later: postings refuse UPDATE, DELETE and TRUNCATE. SQLite keeps its foreign key.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 14:30:00
"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

CHECK_LINK = r"""
CREATE OR REPLACE FUNCTION jieyou_refuse_reversal_of_reversal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reversed_kind text;
BEGIN
    SELECT kind INTO reversed_kind FROM postings WHERE id = NEW.reverses_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'a reversal names a posting that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF reversed_kind = 'reversal' THEN
        RAISE EXCEPTION 'a reversal cannot be reversed' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""

# Migration 0001's function, restored by the downgrade.
REFUSE_ONLY = r"""
CREATE OR REPLACE FUNCTION jieyou_refuse_reversal_of_reversal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.reverses_id IS NOT NULL AND
       (SELECT kind FROM postings WHERE id = NEW.reverses_id) = 'reversal' THEN
        RAISE EXCEPTION 'a reversal cannot be reversed' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(CHECK_LINK)
        op.drop_constraint('fk_postings_reverses_id_postings', 'postings', type_='foreignkey')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.create_foreign_key('fk_postings_reverses_id_postings', 'postings', 'postings', ['reverses_id'], ['id'])
        op.execute(REFUSE_ONLY)
