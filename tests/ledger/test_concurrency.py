"""Concurrency on PostgreSQL with real threads and committed data: no overdraft, no lost update,
no deadlock, exactly once under duplicate requests."""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from infra.auth import SYSTEM
from infra.errors import Conflict
from ledger.models import BalanceShard, Entry, Posting
from ledger.services import accounts, corrections, integrity
from ledger.services.posting import InsufficientBalance, Leg, PostingRequest, post, post_many
from tests import factories as f

pytestmark = pytest.mark.concurrency


def _setup(committed_factory, people: int = 1) -> tuple[list[int], int, int]:
    with committed_factory() as session:
        tree = f.region_tree(session)
        ids = [f.account_of(session, f.participant(session, tree.grid_a)).id for _ in range(people)]
        shop = f.partner_account(session, tree.town_a).id
        issuance = accounts.system_account(session, accounts.ISSUANCE, f.SHARDS).id
        session.commit()
    return ids, shop, issuance


def _run_together(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Start n threads at the same instant (barrier) and collect results or exceptions."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        try:
            return work(i)
        except Exception as exc:  # collected, asserted by the test
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_64_threads_spending_one_balance_never_overdraw(committed_factory):
    (account,), shop, issuance = _setup(committed_factory)
    balance, amount = 100, 7
    with committed_factory() as session:
        f.award(session, account, balance)
        session.commit()

    def spend(i: int) -> str:
        with committed_factory() as session:
            try:
                f.spend(session, account, amount, shop, key=f"spend-{account}-{i}")
                session.commit()
                return "ok"
            except InsufficientBalance:
                session.rollback()
                return "refused"

    outcomes = Counter(_run_together(64, spend))
    assert set(outcomes) <= {"ok", "refused"}, outcomes
    assert outcomes["ok"] == balance // amount  # every spend that fits succeeds; none beyond
    with committed_factory() as session:
        final = accounts.balance(session, account)
        assert final == balance - outcomes["ok"] * amount >= 0
        assert session.scalar(select(func.sum(Entry.amount)).where(Entry.account_id == account)) == final
        assert integrity.verify_chains(session, account_id=account).ok


def test_hot_account_takes_many_concurrent_postings_without_lost_updates_or_deadlocks(committed_factory):
    ids, shop, issuance = _setup(committed_factory, people=4)
    hot = ids[0]
    with committed_factory() as session:
        for other in ids[1:]:
            f.award(session, other, 1000)
        session.commit()

    def worker(i: int) -> int:
        done = 0
        for n in range(25):
            with committed_factory() as session:
                other = ids[1 + (i + n) % 3]
                # Alternate the leg order so that a naive engine would deadlock.
                legs = [Leg(hot, 2), Leg(other, -1), Leg(issuance, -1)] if n % 2 else \
                       [Leg(issuance, -1), Leg(other, -1), Leg(hot, 2)]
                with session.begin():
                    post(session, SYSTEM, PostingRequest(kind="award", reason="并发测试", legs=legs,
                                                         idempotency_key=f"hot-{hot}-{i}-{n}"))
                done += 1
        return done

    results = _run_together(16, worker)
    assert results == [25] * 16, [r for r in results if not isinstance(r, int)][:3]
    with committed_factory() as session:
        assert accounts.balance(session, hot) == 16 * 25 * 2
        assert sum(accounts.balance(session, other) for other in ids[1:]) == 3 * 1000 - 16 * 25
        for account in ids:
            assert integrity.verify_chains(session, account_id=account).ok


def test_awards_spread_over_issuance_shards(committed_factory):
    ids, _shop, issuance = _setup(committed_factory, people=8)

    def award(i: int) -> None:
        for n in range(10):
            with committed_factory() as session:
                f.award(session, ids[i], 1)
                session.commit()

    _run_together(8, award)
    with committed_factory() as session:
        used = session.scalars(select(Entry.shard).where(Entry.account_id == issuance).distinct()).all()
        assert len(used) == f.SHARDS  # 80 awards over 4 shards: each shard took some
        assert session.scalar(select(func.count()).select_from(BalanceShard)
                              .where(BalanceShard.account_id == issuance)) == f.SHARDS


def test_duplicate_requests_in_flight_make_exactly_one_posting(committed_factory):
    (account,), _shop, issuance = _setup(committed_factory)
    key = f"dup-{account}"

    def send(i: int) -> int:
        with committed_factory() as session:
            result = f.award(session, account, 5, key=key)
            session.commit()
            return result.posting_id

    results = _run_together(16, send)
    assert len(set(results)) == 1, results
    with committed_factory() as session:
        assert accounts.balance(session, account) == 5
        assert session.scalar(select(func.count()).select_from(Posting).where(Posting.idem_key == key)) == 1


def test_batches_in_flight_sharing_a_key_post_it_once(committed_factory):
    """Sixteen batches at once, each with a key of its own and one key they all share: the shared
    posting is made once (the others wait for it and replay it), every batch's own posting once."""
    (account,), _shop, issuance = _setup(committed_factory)

    def send(i: int) -> tuple[int, int]:
        with committed_factory() as session:
            shared, own = post_many(session, SYSTEM, [
                PostingRequest(kind="award", reason="共同", idempotency_key="shared-in-batches",
                               legs=[Leg(account, 1), Leg(issuance, -1)]),
                PostingRequest(kind="award", reason="各自", idempotency_key=f"own-{i}",
                               legs=[Leg(account, 2), Leg(issuance, -2)])])
            session.commit()
            return shared.posting_id, own.posting_id

    results = _run_together(16, send)
    assert len({shared for shared, _own in results}) == 1, results
    assert len({own for _shared, own in results}) == 16
    with committed_factory() as session:
        assert accounts.balance(session, account) == 1 + 16 * 2
        assert integrity.reconcile(session).ok


def test_concurrent_reversals_reverse_once(committed_factory):
    (account,), _shop, _issuance = _setup(committed_factory)
    with committed_factory() as session:
        original = f.award(session, account, 9).posting_id
        session.commit()

    def reverse(i: int) -> str:
        with committed_factory() as session:
            try:
                corrections.reverse(session, SYSTEM, original, f"冲正 {i}")
                session.commit()
                return "ok"
            except Conflict as exc:
                return exc.code

    outcomes = Counter(_run_together(8, reverse))
    assert outcomes["ok"] == 1 and outcomes["already_reversed"] == 7, outcomes
    with committed_factory() as session:
        assert accounts.balance(session, account) == 0


@pytest.mark.parametrize("batch", [False, True])
def test_postings_do_not_queue_behind_a_held_issuance_shard(committed_factory, batch):
    """While f.SHARDS - 1 transactions each hold a shard of the issuance account, one more award
    (single or batch) still goes through at once on the free shard instead of waiting."""
    people, _shop, issuance = _setup(committed_factory, people=f.SHARDS)
    holders = [committed_factory() for _ in range(f.SHARDS - 1)]
    try:
        for i, holder in enumerate(holders):
            f.award(holder, people[i], 1)
        with committed_factory() as session:
            session.execute(select(func.set_config("lock_timeout", "2s", True)))
            request = PostingRequest(kind="award", reason="one more", idempotency_key=f"late-{batch}",
                                     legs=[Leg(people[-1], 1), Leg(issuance, -1)])
            result = post_many(session, SYSTEM, [request])[0] if batch else post(session, SYSTEM, request)
            assert not result.replayed  # it did not wait out the 2 s lock timeout on a held shard
            session.commit()
        for holder in holders:
            holder.commit()
        with committed_factory() as session:
            shards = set(session.scalars(select(Entry.shard).where(Entry.account_id == issuance)))
        assert len(shards) == f.SHARDS  # every award took its own shard
    finally:
        for holder in holders:
            holder.close()


def test_a_reversal_and_a_redemption_on_the_same_accounts_do_not_deadlock(committed_factory):
    """Regression: a reversal used to pin the original shard of the partner account and lock it
    after the participant, while a redemption takes a free partner shard first and then the
    participant: each then waited for the other. Every path now locks system accounts first.
    (A redemption itself is now corrected at the counter, not reversed; a debit of the participant
    to the partner's account stands in for it.)"""
    (person,), shop, _issuance = _setup(committed_factory)
    with committed_factory() as session:
        f.award(session, person, 10)
        original = post(session, SYSTEM, PostingRequest(kind="adjustment", reason="记入了错误的门店",
                                                         legs=[Leg(person, -2), Leg(shop, 2)])).posting_id
        session.commit()
        shop_shard = session.scalar(select(Entry.shard).where(Entry.posting_id == original, Entry.account_id == shop))
    holders = [committed_factory() for _ in range(f.SHARDS)]
    try:
        # Hold the participant, and every partner shard but the original one.
        holders[0].execute(select(BalanceShard).where(BalanceShard.account_id == person).with_for_update())
        others = [s for s in range(f.SHARDS) if s != shop_shard]
        for holder, shard in zip(holders[1:], others):
            holder.execute(select(BalanceShard).where(BalanceShard.account_id == shop, BalanceShard.shard == shard)
                           .with_for_update())
        outcomes: dict[str, Any] = {}

        def reverse() -> None:
            with committed_factory() as session:
                try:
                    corrections.reverse(session, SYSTEM, original, "wrong outlet")
                    session.commit()
                    outcomes["reverse"] = "ok"
                except Exception as exc:  # asserted below
                    outcomes["reverse"] = exc

        def spend() -> None:
            with committed_factory() as session:
                try:
                    f.spend(session, person, 1, shop)
                    session.commit()
                    outcomes["spend"] = "ok"
                except Exception as exc:  # asserted below
                    outcomes["spend"] = exc

        first = threading.Thread(target=reverse)
        first.start()
        time.sleep(0.3)  # the reversal queues for the participant first
        second = threading.Thread(target=spend)
        second.start()
        time.sleep(0.3)
        holders[0].commit()  # release the participant; the partner shards follow
        time.sleep(0.3)
        for holder in holders[1:]:
            holder.commit()
        first.join(20)
        second.join(20)
        assert outcomes == {"reverse": "ok", "spend": "ok"}, outcomes
    finally:
        for holder in holders:
            holder.close()
