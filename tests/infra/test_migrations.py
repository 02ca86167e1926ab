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
