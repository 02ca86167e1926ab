"""The posting engine: double entry, whole points, no overdraft, idempotency, atomic batches."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from infra.auth import SYSTEM
from infra.errors import IdempotencyConflict, NotFound, ValidationFailed
from ledger.models import Entry, Posting
from ledger.services import accounts, integrity
from ledger.services.posting import InsufficientBalance, Leg, PostingRequest, post, post_many
from tests import factories as f


@pytest.fixture
def person(session):
    tree = f.region_tree(session)
    return f.participant(session, tree.grid_a)


def test_award_credits_participant_and_balances_to_zero(session, person):
    account = f.account_of(session, person)
    result = f.award(session, account.id, 7)
    assert accounts.balance(session, account.id) == 7
    entries = session.scalars(select(Entry).where(Entry.posting_id == result.posting_id)).all()
    assert len(entries) == 2 and sum(e.amount for e in entries) == 0
    assert result.balances_after[account.id] == 7


def test_spending_more_than_the_balance_is_refused(session, person):
    account = f.account_of(session, person)
    shop = f.partner_account(session, person.region)
    f.award(session, account.id, 5)
    with pytest.raises(InsufficientBalance) as err:
        f.spend(session, account.id, 6, shop.id)
    assert err.value.status == 409 and err.value.details["amount"]


def test_database_refuses_a_negative_participant_balance(session, person):
    account = f.account_of(session, person)
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.execute(text("UPDATE balances SET balance = -1 WHERE account_id = :a"), {"a": account.id})


@pytest.mark.parametrize("legs, field", [
    ([(1, 5)], "legs"),
    ([(1, 5), (2, -4)], "legs"),
    ([(1, 0), (2, 0)], "legs"),
])
def test_malformed_postings_are_refused_with_the_field_named(session, legs, field):
    with pytest.raises(ValidationFailed) as err:
        post(session, SYSTEM, PostingRequest(kind="award", reason="x", legs=[Leg(a, n) for a, n in legs]))
    assert field in err.value.details


def test_a_posting_needs_a_reason(session, person):
    account = f.account_of(session, person)
    with pytest.raises(ValidationFailed) as err:
        post(session, SYSTEM, PostingRequest(kind="award", reason="  ", legs=[Leg(account.id, 1), Leg(account.id + 1, -1)]))
    assert "reason" in err.value.details


def test_unknown_account_is_not_found(session):
    with pytest.raises(NotFound):
        post(session, SYSTEM, PostingRequest(kind="award", reason="x", legs=[Leg(10**9, 1), Leg(10**9 + 1, -1)]))


def test_future_effective_time_is_refused(session, person):
    account = f.account_of(session, person)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    with pytest.raises(ValidationFailed) as err:
        post(session, SYSTEM, PostingRequest(kind="award", reason="x", effective_at=later,
                                             legs=[Leg(account.id, 1), Leg(account.id + 1, -1)]))
    assert "effective_at" in err.value.details


def test_same_key_same_payload_returns_the_original(session, person):
    account = f.account_of(session, person)
    first = f.award(session, account.id, 3, key="award-key-0001")
    again = f.award(session, account.id, 3, key="award-key-0001")
    assert again.posting_id == first.posting_id and again.replayed and not first.replayed
    assert accounts.balance(session, account.id) == 3


def test_same_key_different_payload_is_refused(session, person):
    account = f.account_of(session, person)
    f.award(session, account.id, 3, key="award-key-0002")
    with pytest.raises(IdempotencyConflict) as err:
        f.award(session, account.id, 4, key="award-key-0002")
    assert err.value.status == 422 and "idempotency_key" in err.value.details


def test_a_retried_batch_posts_only_what_is_new(session, person):
    """A batch retried with one more posting: the earlier ones come back as they were (replays),
    the new one is posted, and nothing is written twice."""
    account = f.account_of(session, person)
    issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS)

    def awards(keys: list[str]) -> list[PostingRequest]:
        return [PostingRequest(kind="award", reason="补发", idempotency_key=k,
                               legs=[Leg(account.id, 2), Leg(issuance.id, -2)]) for k in keys]

    first = post_many(session, SYSTEM, awards(["batch-a", "batch-b"]))
    before = session.scalar(select(func.count()).select_from(Posting))
    again = post_many(session, SYSTEM, awards(["batch-a", "batch-c", "batch-b"]))
    assert [r.replayed for r in again] == [True, False, True]
    assert again[0].posting_id == first[0].posting_id and again[2].posting_id == first[1].posting_id
    assert session.scalar(select(func.count()).select_from(Posting)) == before + 1
    assert accounts.balance(session, account.id) == 6
    with pytest.raises(IdempotencyConflict):  # a reused key with other content is still refused
        post_many(session, SYSTEM, [PostingRequest(kind="award", reason="另一笔", idempotency_key="batch-c",
                                                   legs=[Leg(account.id, 2), Leg(issuance.id, -2)])])


def test_a_batch_is_all_or_nothing(session, person):
    account = f.account_of(session, person)
    shop = f.partner_account(session, person.region)
    issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS)
    before = session.scalar(select(func.count()).select_from(Posting))
    with pytest.raises(InsufficientBalance) as err:
        with session.begin_nested():
            post_many(session, SYSTEM, [
                PostingRequest(kind="award", reason="a", legs=[Leg(account.id, 5), Leg(issuance.id, -5)]),
                PostingRequest(kind="redemption", reason="b", legs=[Leg(account.id, -9), Leg(shop.id, 9)]),
            ])
    assert err.value.posting_index == 1 and err.value.account_id == account.id
    assert set(err.value.details) == {"amount"}  # the account and the index are not the answer's
    assert session.scalar(select(func.count()).select_from(Posting)) == before
    assert accounts.balance(session, account.id) == 0


def test_batch_postings_chain_in_order(session, person):
    account = f.account_of(session, person)
    issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS)
    results = post_many(session, SYSTEM, [
        PostingRequest(kind="award", reason=f"r{i}", legs=[Leg(account.id, i), Leg(issuance.id, -i)]) for i in range(1, 6)])
    entries = session.scalars(select(Entry).where(Entry.account_id == account.id).order_by(Entry.seq)).all()
    assert [e.balance_after for e in entries] == [1, 3, 6, 10, 15]
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert integrity.verify_chains(session, account_id=account.id).ok  # each hash taken over the one before
    assert len({r.posting_id for r in results}) == 5


def test_entries_and_postings_refuse_update_and_delete(session, person):
    account = f.account_of(session, person)
    result = f.award(session, account.id, 2)
    for sql in ("UPDATE entries SET amount = 100 WHERE posting_id = :p", "DELETE FROM entries WHERE posting_id = :p",
                "UPDATE postings SET reason = 'edited' WHERE id = :p", "DELETE FROM postings WHERE id = :p"):
        with pytest.raises(DBAPIError, match="append-only"):
            with session.begin_nested():
                session.execute(text(sql), {"p": result.posting_id})


def test_balance_at_a_past_moment(session, person):
    account = f.account_of(session, person)
    issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS)
    now = dt.datetime.now(dt.timezone.utc)
    for days_ago, points in ((30, 10), (20, 5), (10, 2)):
        post(session, SYSTEM, PostingRequest(kind="award", reason="past work", effective_at=now - dt.timedelta(days=days_ago),
                                             legs=[Leg(account.id, points), Leg(issuance.id, -points)]))
    assert accounts.balance_at(session, account.id, now - dt.timedelta(days=25)) == 10
    assert accounts.balance_at(session, account.id, now - dt.timedelta(days=15)) == 15
    assert accounts.balance_at(session, account.id, now - dt.timedelta(days=40)) == 0
    assert accounts.balance(session, account.id) == 17


def test_statement_is_newest_first_with_reasons_and_pages(session, person):
    account = f.account_of(session, person)
    for i in range(5):
        f.award(session, account.id, i + 1, reason=f"第{i + 1}次上报")
    first, cursor = accounts.statement(session, account, limit=2)
    assert [line.reason for line in first] == ["第5次上报", "第4次上报"]
    assert first[0].balance_after == 15
    second, cursor2 = accounts.statement(session, account, limit=2, before_id=cursor)
    third, cursor3 = accounts.statement(session, account, limit=2, before_id=cursor2)
    assert [line.amount for line in second + third] == [3, 2, 1]
    assert cursor3 is None


def test_a_batch_that_breaks_a_database_rule_raises_the_usual_integrity_error(session, person):
    """The batch path talks to the driver directly; its errors must look like everyone else's."""
    from ledger.services import corrections

    account = f.account_of(session, person)
    original = f.award(session, account.id, 5)
    corrections.reverse(session, SYSTEM, original.posting_id, "first reversal")
    issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS)
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            post_many(session, SYSTEM, [PostingRequest(kind="reversal", reason="second", reverses_id=original.posting_id,
                                                       legs=[Leg(account.id, -5), Leg(issuance.id, 5)])])
    assert accounts.balance(session, account.id) == 0


@pytest.mark.parametrize("column, bogus", [("posting_id", "posting"), ("account_id", "account")])
def test_database_refuses_an_entry_naming_a_missing_posting_or_account(session, person, column, bogus):
    """The statement-level reference check stands in for foreign keys: a stray writer cannot add
    an entry for a posting or an account that does not exist."""
    account = f.account_of(session, person)
    result = f.award(session, account.id, 2)
    values = {"posting_id": result.posting_id, "account_id": account.id, column: 987654321}
    with pytest.raises(IntegrityError, match="does not exist"):
        with session.begin_nested():
            session.execute(text(
                "INSERT INTO entries (posting_id, account_id, shard, seq, amount, balance_after, effective_at, "
                "hash) VALUES (:posting_id, :account_id, 0, 99, 1, 1, now(), 'y')"), values)


def test_balance_shards_refuse_delete(session, person):
    account = f.account_of(session, person)
    with pytest.raises(DBAPIError, match="append-only|refused"):
        with session.begin_nested():
            session.execute(text("DELETE FROM balances WHERE account_id = :a"), {"a": account.id})


def test_a_posting_is_atomic_on_its_own_in_autocommit(engine):
    """A one-posting unit of work may run in autocommit (the ledger benchmark does): a refused
    posting then leaves no posting row behind, and an accepted one is durable at once."""
    from sqlalchemy.orm import Session as PlainSession

    auto = engine.execution_options(isolation_level="AUTOCOMMIT")
    with PlainSession(engine) as setup:
        tree = f.region_tree(setup)
        account = f.account_of(setup, f.participant(setup, tree.grid_a)).id
        shop = f.partner_account(setup, tree.town_a).id
        setup.commit()
    with PlainSession(auto) as session:
        f.award(session, account, 3, key="auto-award")
        with pytest.raises(InsufficientBalance):
            f.spend(session, account, 5, shop, key="auto-overspend")
    with PlainSession(engine) as check:
        keys = set(check.scalars(select(Posting.idem_key).where(Posting.idem_key.like("auto-%"))))
        assert keys == {"auto-award"} and accounts.balance(check, account) == 3


def test_a_batch_worked_out_from_a_stale_read_is_redone_under_the_lock(session, person, monkeypatch):
    """A batch is first worked out from an unlocked read; a shard that moved before the lock was
    taken is redone from the locked state, so balances and chains come out exactly right."""
    from ledger.services import posting_sql

    account = f.account_of(session, person)
    issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS)
    f.award(session, account.id, 4)
    stale = posting_sql.read_balances(session, [(account.id, 0)])  # before the next award
    f.award(session, account.id, 6)  # moves the shard after "the read"
    real = posting_sql.read_balances

    def read_stale(s, wanted):  # type: ignore[no-untyped-def]
        rows = {(r[0], r[1]): r for r in real(s, wanted)}
        rows.update({(r[0], r[1]): r for r in stale})
        return list(rows.values())

    monkeypatch.setattr(posting_sql, "read_balances", read_stale)
    results = post_many(session, SYSTEM, [
        PostingRequest(kind="redemption", reason="spend", legs=[Leg(account.id, -9), Leg(issuance.id, 9, shard=0)]),
        PostingRequest(kind="award", reason="award", legs=[Leg(account.id, 2), Leg(issuance.id, -2)])])
    assert results[0].balances_after[account.id] == 1 and results[1].balances_after[account.id] == 3
    assert accounts.balance(session, account.id) == 3
    assert integrity.verify_chains(session, account_id=account.id).ok and integrity.reconcile(session).ok


@pytest.mark.parametrize("number", [1e16, 1e-7, float("inf")])
def test_metadata_numbers_that_the_database_would_rewrite_are_refused(session, person, number):
    """jsonb stores 1e+16 as 10000000000000000; the chain hash is taken over the JSON text, so such
    a number would later read as a tampered entry. It is refused up front, naming the field."""
    account = f.account_of(session, person)
    issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS)
    with pytest.raises(ValidationFailed) as err:
        post(session, SYSTEM, PostingRequest(kind="award", reason="x", meta={"factor": {"x": [number]}},
                                             legs=[Leg(account.id, 1), Leg(issuance.id, -1)]))
    assert "meta" in err.value.details
    ok = post(session, SYSTEM, PostingRequest(kind="award", reason="x", meta={"factor": 1.5},
                                              legs=[Leg(account.id, 1), Leg(issuance.id, -1)]))
    assert ok.posting_id


def test_a_batch_writes_the_system_shards_it_holds_before_locking_the_others(session, person, monkeypatch):
    """The system-account shards a batch claims are locked before anything else, so their read is
    final: their chains are written before the participants' rows are locked, outside the stretch
    concurrent batches queue on. The result is the same ledger."""
    from ledger.services import posting_sql

    account = f.account_of(session, person)
    issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS)
    calls: list[tuple[str, set[int]]] = []
    real_lock, real_write = posting_sql.lock_balances, posting_sql.write_fragments

    def lock(s, wanted):  # type: ignore[no-untyped-def]
        calls.append(("lock", {a for a, _s in wanted}))
        return real_lock(s, wanted)

    def write(s, chains):  # type: ignore[no-untyped-def]
        calls.append(("write", {int(c.balance[0]) for c in chains}))
        return real_write(s, chains)

    monkeypatch.setattr(posting_sql, "lock_balances", lock)
    monkeypatch.setattr(posting_sql, "write_fragments", write)
    post_many(session, SYSTEM, [
        PostingRequest(kind="award", reason=f"r{i}", legs=[Leg(account.id, i), Leg(issuance.id, -i)]) for i in range(1, 4)])
    assert calls == [("write", {issuance.id}), ("lock", {account.id}), ("write", {account.id})]
    assert accounts.balance(session, account.id) == 6
    assert integrity.verify_chains(session).ok and integrity.reconcile(session).ok


def test_a_short_system_shard_is_reported_in_batch_order(session, person):
    """A chain that would go short is never written early: the first short posting of the batch is
    the one reported, whichever shard it is on."""
    account = f.account_of(session, person)
    shop = f.partner_account(session, person.region)
    with pytest.raises(InsufficientBalance) as err:
        with session.begin_nested():
            post_many(session, SYSTEM, [
                PostingRequest(kind="redemption", reason="a", legs=[Leg(account.id, -1), Leg(shop.id, 1)]),
                PostingRequest(kind="refund", reason="b", legs=[Leg(shop.id, -5, shard=0), Leg(account.id, 5)]),
            ])
    assert err.value.posting_index == 0 and err.value.account_id == account.id
