"""Identity: a staff account remembers the admin who created it.

Why: four eyes checked only that the approver was not the requester. A township admin (who holds
every role) could create a clerk, sign in as the clerk (the admin set its password), request an
adjustment and approve it as the admin: one person, both pairs of eyes. `staff_users.created_by`
lets the services refuse a decision between an account and the one that created it.

Accounts created before this revision get their creator from the audit log (`staff.create`, whose
object is the new account); those the command line or the demo made keep NULL.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 06:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("created_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch.create_foreign_key(op.f("fk_staff_users_created_by_staff_users"), "staff_users", ["created_by"], ["id"])
    op.execute("""
        UPDATE staff_users SET created_by = (
            SELECT a.actor_id FROM audit_log a
            WHERE a.action = 'staff.create' AND a.actor_kind = 'staff'
              AND a.object_id = CAST(staff_users.id AS VARCHAR(40))
              AND a.actor_id <> staff_users.id
              AND a.actor_id IN (SELECT s.id FROM staff_users s)
            ORDER BY a.id LIMIT 1)
        WHERE created_by IS NULL
    """)


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_constraint(op.f("fk_staff_users_created_by_staff_users"), type_="foreignkey")
        batch.drop_column("created_by")
