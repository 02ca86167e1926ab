"""Many counters acting on one participant at the same moment, on PostgreSQL with real threads."""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from infra.auth import SYSTEM
from infra.errors import Conflict, NotFound
from ledger.services import accounts, integrity
from redemption.models import Redemption, Scenario, UsageCounter
from redemption.services import counter
from tests import factories as f

pytestmark = pytest.mark.concurrency
CFG = f.counter_config()


@pytest.fixture(autouse=True)
def many_live_codes(monkeypatch):
    """A participant normally keeps 3 live codes; here 64 counters each hold one at once."""
    from redemption.services import codes

    monkeypatch.setattr(codes, "MAX_ACTIVE", 100)


def _race(committed_factory, desks, person_id, scenario_ids, codes, n=64):  # noqa: ANN001, ANN201
    barrier = threading.Barrier(n)

    def attempt(i: int) -> str:
        with committed_factory() as session:
            barrier.wait()
            try:
                counter.redeem(session, desks[i % len(desks)], digits=codes[i], scenario_id=scenario_ids[i % len(scenario_ids)],
                               idem_key=f"race-{person_id}-{i:03d}", cfg=CFG)
                session.commit()
                return "ok"
            except (Conflict, NotFound) as exc:
                session.rollback()
                return exc.code

    with ThreadPoolExecutor(n) as pool:
        return Counter(pool.map(attempt, range(n)))


def test_64_redemptions_across_outlets_never_overdraw(committed_factory):
    with committed_factory() as session:
        tree = f.region_tree(session)
        person = f.participant(session, tree.grid_a)
        account = f.account_of(session, person).id
        f.award(session, account, 200)
        partner, outlets, desks = f.shop(session, tree.town_a, outlets=4)
        scenarios = [f.scenario(session, partner, outlets, points_cost=15).id,
                     f.scenario(session, partner, outlets, points_cost=15).id]
        codes = [f.code_for(session, person) for _ in range(64)]
        session.commit()
    outcomes = _race(committed_factory, desks, person.id, scenarios, codes)
    assert outcomes["ok"] == 200 // 15 and set(outcomes) <= {"ok", "insufficient_points"}, outcomes
    with committed_factory() as session:
        assert accounts.balance(session, account) == 200 - 13 * 15
        assert session.scalar(select(func.sum(Redemption.points)).where(Redemption.participant_id == person.id)) == 195
        assert integrity.verify_chains(session, account_id=account).ok


def test_limits_and_quota_hold_under_concurrency(committed_factory):
    with committed_factory() as session:
        tree = f.region_tree(session)
        person = f.participant(session, tree.grid_a)
        f.award(session, f.account_of(session, person).id, 10_000)
        partner, outlets, desks = f.shop(session, tree.town_a, outlets=4)
        daily = f.scenario(session, partner, outlets, points_cost=2, limit_day=3).id
        scarce = f.scenario(session, partner, outlets, points_cost=1, total_quota=5).id
        codes = [f.code_for(session, person) for _ in range(64)]
        session.commit()
    outcomes = _race(committed_factory, desks, person.id, [daily, scarce], codes)
    with committed_factory() as session:
        used = session.scalars(select(Redemption.scenario_id).where(Redemption.participant_id == person.id)).all()
        assert used.count(daily) == 3 and used.count(scarce) == 5, outcomes
        assert session.get(Scenario, scarce).quota_used == 5
        assert session.scalar(select(UsageCounter.used).where(UsageCounter.scenario_id == daily,
                                                              UsageCounter.period.like("D%"))) == 3
    assert outcomes["ok"] == 8 and outcomes["limit_day"] + outcomes["quota_exhausted"] == 56


def test_hold_expiry_by_two_workers_releases_once(committed_factory):
    import datetime as dt

    with committed_factory() as session:
        tree = f.region_tree(session)
        person = f.participant(session, tree.grid_a)
        account = f.account_of(session, person).id
        f.award(session, account, 100)
        partner, outlets, desks = f.shop(session, tree.town_a)
        rice = f.scenario(session, partner, outlets, points_cost=10)
        for i in range(6):
            counter.hold(session, desks[0], digits=f.code_for(session, person), scenario_id=rice.id, points=None,
                         idem_key=f"hold-race-{person.id}-{i}", cfg=CFG)
        session.commit()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    barrier = threading.Barrier(2)

    def worker(_i: int) -> int:
        with committed_factory() as session:
            barrier.wait()
            done = counter.expire_holds(session, SYSTEM, CFG, now=later)
            session.commit()
            return done

    with ThreadPoolExecutor(2) as pool:
        released = list(pool.map(worker, range(2)))
    assert sum(released) >= 6
    with committed_factory() as session:
        assert accounts.balance(session, account) == 100
