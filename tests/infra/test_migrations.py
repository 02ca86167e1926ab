"""The Alembic history is the schema: it matches the models and downgrades cleanly."""
from __future__ import annotations

import uuid

import psycopg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import identity.models  # noqa: F401
import ledger.models  # noqa: F401
import redemption.models  # noqa: F401
import scoring.models  # noqa: F401
from infra.db import Base
from migrations.alembic_config import alembic_config
from tests.conftest import ADMIN_URL, _pg_url


def test_models_and_migrations_agree(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_back(tmp_path):
    name = f"jieyou_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _pg_url(name)
        config = alembic_config(url)
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        scratch = create_engine(url)
        assert set(inspect(scratch).get_table_names()) == {"alembic_version"}
        scratch.dispose()
        command.upgrade(config, "head")
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_0022_finds_who_created_each_existing_staff_account_in_the_audit_log():
    """Accounts made before `staff_users.created_by` existed get their creator from the
    `staff.create` record, so four eyes hold for them too; those the command line made keep none."""
    name = f"jieyou_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _pg_url(name)
        config = alembic_config(url)
        command.upgrade(config, "0021")
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            conn.execute("INSERT INTO regions (id, level, code, name, path) VALUES (1, 'county', 'C', '县', '/1/')")
            for staff_id, username, role in ((1, "admin", "admin"), (2, "clerk", "clerk"), (3, "other", "clerk")):
                conn.execute("INSERT INTO staff_users (id, username, display_name, role, scope_region_id, "
                             "password_hash, active, created_at) VALUES (%s, %s, %s, %s, 1, 'x', true, now())",
                             (staff_id, username, username, role))
            conn.execute("INSERT INTO audit_log (at, actor_kind, actor_id, actor_label, action, object_type, "
                         "object_id, region_path, details) VALUES (now(), 'staff', 1, 'admin', 'staff.create', "
                         "'staff_user', '2', '/1/', '{}')")
        command.upgrade(config, "head")
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            found = dict(conn.execute("SELECT id, created_by FROM staff_users ORDER BY id").fetchall())
        assert found == {1: None, 2: 1, 3: None}
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
