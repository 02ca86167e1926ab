"""Test harness: one PostgreSQL database per run, created here, migrated once with Alembic (so the
migrations are tested too) and dropped at the end; every test runs inside a savepoint that is
rolled back. Concurrency tests commit their own data through `committed_factory`."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from infra.config import Settings
from infra.db import db, make_engine
from infra.limits import limiter
from jieyou.app import create_app
from ledger.services import accounts
from migrations.alembic_config import alembic_config
from scoring.services import rules

ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SHARDS = 4


def _pg_url(name: str) -> str:
    base = ADMIN_URL.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"jieyou_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _pg_url(name)
    command.upgrade(alembic_config(url), "head")
    try:
        yield url
    finally:
        db.session.remove()
        if db.engine is not None:
            db.engine.dispose()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_settings(tmp: Path, database_url: str) -> Settings:
    return Settings.from_env(instance_dir=tmp, database_url=database_url, broker_url="", secret_key="test-secret",
                             argon2_time_cost=1, argon2_memory_kib=1024, system_account_shards=SHARDS,
                             login_rate_limit="1000 per minute", adjustment_approval_threshold=20)


@pytest.fixture(scope="session")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url, pool_size=20, max_overflow=80)
    with engine.begin() as conn:
        with Session(bind=conn) as session:
            accounts.system_account(session, accounts.ISSUANCE, SHARDS)
            accounts.system_account(session, accounts.ADJUSTMENT, SHARDS)
            rules.seed_rules(session)
            session.commit()
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app(engine: Engine, tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> Flask:
    return create_app(test_settings(tmp_path_factory.mktemp("instance"), pg_url), engine=engine)


@pytest.fixture
def session(app: Flask, engine: Engine) -> Iterator[Session]:
    """The test's own session inside a transaction rolled back at the end. Requests made during
    the test get their own sessions on the same connection, as in production; their commits
    become savepoint releases."""
    connection = engine.connect()
    outer = connection.begin()
    db.configure(connection, join_transaction_mode="create_savepoint")  # type: ignore[arg-type]
    limiter.reset()
    test_session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield test_session
    finally:
        test_session.close()
        db.session.remove()
        outer.rollback()
        connection.close()
        db.configure(engine)


@pytest.fixture
def client(app: Flask, session: Session) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def committed_factory(engine: Engine, app: Flask) -> sessionmaker[Session]:
    """Sessions that really commit, for tests of concurrency and crashes. Their data stays in the
    run's database (dropped at the end), so such tests always create fresh participants."""
    db.configure(engine)
    return sessionmaker(bind=engine, expire_on_commit=False)


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The embedded default: a SQLite file migrated by the same Alembic history."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'jieyou.db'}"
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url)
    with Session(bind=engine) as session:
        accounts.system_account(session, accounts.ISSUANCE, SHARDS)
        accounts.system_account(session, accounts.ADJUSTMENT, SHARDS)
        rules.seed_rules(session)
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def any_session(request: pytest.FixtureRequest, engine: Engine, app: Flask) -> Iterator[Session]:
    """A rolled-back session on PostgreSQL and on the embedded SQLite default."""
    bind = engine if request.param == "postgresql" else request.getfixturevalue("sqlite_engine")
    connection = bind.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()
