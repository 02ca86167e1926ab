"""The embedded default stays honest: the same migrations, guards and flows on SQLite."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from infra.auth import SYSTEM
from infra.config import Settings
from infra.db import db
from infra.tasks import UnitOfWorkTask
from jieyou.app import create_app
from ledger.models import Entry
from ledger.services import accounts, corrections, integrity
from ledger.services.posting import InsufficientBalance
from tests import factories as f

pytestmark = pytest.mark.sqlite


def test_append_only_overdraft_and_verify_on_both_backends(any_session):
    session = any_session
    tree = f.region_tree(session)
    account = f.account_of(session, f.participant(session, tree.grid_a)).id
    shop = f.partner_account(session, tree.town_a).id
    original = f.award(session, account, 10)
    with pytest.raises(InsufficientBalance):
        with session.begin_nested():
            f.spend(session, account, 11, shop)
    corrections.reverse(session, SYSTEM, original.posting_id, "冲正")
    for sql in ("UPDATE entries SET amount = 1", "DELETE FROM entries", "DELETE FROM postings"):
        with pytest.raises(DBAPIError, match="append-only"):
            with session.begin_nested():
                session.execute(text(sql))
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.execute(text("UPDATE balances SET balance = -5 WHERE account_id = :a"), {"a": account})
    assert integrity.verify_chains(session, account_id=account).ok
    assert accounts.balance(session, account) == 0
    assert len(session.scalars(select(Entry).where(Entry.account_id == account)).all()) == 2


def test_the_embedded_app_serves_a_participant(tmp_path, sqlite_engine, engine, app):
    settings = Settings.from_env(instance_dir=tmp_path, database_url=str(sqlite_engine.url), broker_url="",
                                 secret_key="x", argon2_time_cost=1, argon2_memory_kib=1024, system_account_shards=4)
    embedded = create_app(settings, engine=sqlite_engine)
    try:
        assert embedded.config["SETTINGS"].embedded and embedded.config["SETTINGS"].is_sqlite
        with db.unit_of_work() as session:
            tree = f.region_tree(session)
            person = f.participant(session, tree.grid_a, password="pass-word-1")
            f.award(session, f.account_of(session, person).id, 12, reason="组织法律宣传活动")
            phone = person.phone
        client = embedded.test_client()
        token = client.post("/api/v1/auth/participant/login", json={"phone": phone, "password": "pass-word-1"}).json["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/me/balance", headers=headers).json["balance"] == 12
        assert client.get("/api/v1/me/statement", headers=headers).json["items"][0]["reason"] == "组织法律宣传活动"
    finally:
        db.session.remove()
        db.configure(engine)
        UnitOfWorkTask.flask_app = app
