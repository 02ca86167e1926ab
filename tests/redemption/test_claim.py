"""The counter's fast path: one-statement claim (and its stepwise twin), limits taken in one
upsert, duplicates racing on one code, and the rate-limit storage behind `memory://`."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from infra.driver import driver_rows
from infra.errors import Conflict, NotFound
from infra.limits import LazyExpiryMemoryStorage
from ledger.services import accounts
from redemption.models import OneTimeCode, Redemption, UsageCounter
from redemption.services import claim, counter
from tests import factories as f

CFG = f.counter_config()


@pytest.fixture(params=["one_statement", "stepwise"])
def path(request, monkeypatch):
    """Every test here runs on the PostgreSQL statement and on the step-by-step path SQLite uses."""
    if request.param == "stepwise":
        monkeypatch.setattr(claim, "on_postgresql", lambda _session: False)
        monkeypatch.setattr(counter, "on_postgresql", lambda _session: False)
    return request.param


@pytest.fixture
def world(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    account = f.account_of(session, person)
    f.award(session, account.id, 100)
    partner, outlets, desks = f.shop(session, tree.town_a)
    rice = f.scenario(session, partner, outlets, points_cost=30, yuan_value_fen=3000)
    return tree, person, account, partner, outlets, desks, rice


def test_redeem_claims_the_code_once_and_replays_the_key(session, world, path):
    _t, person, account, partner, _o, desks, rice = world
    digits = f.code_for(session, person)
    first, replayed = counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id, idem_key="fast-0001",
                                     cfg=CFG)
    assert not replayed and first.posting_id and first.terms["points_cost"] == 30
    assert session.get(Redemption, first.id) is first  # the session knows the object it returned
    code = session.scalar(select(OneTimeCode).where(OneTimeCode.participant_id == person.id))
    session.refresh(code)
    assert code.used_at is not None and code.used_by_outlet == desks[0].id
    again, replayed = counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id, idem_key="fast-0001",
                                     cfg=CFG)
    assert replayed and again.id == first.id
    with pytest.raises(NotFound) as err:
        counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id, idem_key="fast-0002", cfg=CFG)
    assert err.value.code == "code_invalid"
    assert accounts.balance(session, account.id) == 70
    assert accounts.balance(session, accounts.partner_account(session, partner.id, f.SHARDS).id) == 30


def test_a_scenario_elsewhere_is_404_and_leaves_the_code_unused(session, world, path):
    tree, person, _a, _p, _o, desks, rice = world
    _p2, other_outlets, _d = f.shop(session, tree.town_a, outlets=1)
    digits = f.code_for(session, person)
    with pytest.raises(NotFound) as err:
        counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id + 100000, idem_key="fast-0003", cfg=CFG)
    assert "scenario_id" in err.value.details
    done, _ = counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id, idem_key="fast-0004", cfg=CFG)
    assert done.points == 30


def test_the_first_full_period_refuses_and_takes_nothing(session, world, path):
    _t, person, _a, partner, outlets, desks, _rice = world
    tea = f.scenario(session, partner, outlets, points_cost=1, limit_day=5, limit_month=1, limit_year=9)
    counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=tea.id, idem_key="fast-0005",
                   cfg=CFG)
    with pytest.raises(Conflict) as err:
        with session.begin_nested():
            counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=tea.id,
                           idem_key="fast-0006", cfg=CFG)
    assert err.value.code == "limit_month" and err.value.details["reasons"][0]["limit"] == 1
    used = dict(session.execute(select(UsageCounter.period, UsageCounter.used).where(
        UsageCounter.participant_id == person.id, UsageCounter.scenario_id == tea.id)).all())
    assert sorted(used.values()) == [1, 1, 1]  # day, month and year each counted once, not twice


def test_a_participant_without_an_account_yet_is_refused_for_points(session, world, path):
    tree, _person, _a, _partner, _o, desks, rice = world
    newcomer = f.participant(session, tree.grid_a)
    with pytest.raises(Conflict) as err:
        counter.redeem(session, desks[0], digits=f.code_for(session, newcomer), scenario_id=rice.id,
                       idem_key="fast-0007", cfg=CFG)
    assert err.value.code == "insufficient_points"


def test_holds_claim_through_the_same_statement(session, world, path):
    _t, person, account, partner, outlets, desks, rice = world
    window = f.scenario(session, partner, outlets, kind="privilege", points_cost=0, required_grade="A",
                        yuan_value_fen=0)
    digits = f.code_for(session, person)
    with pytest.raises(Conflict) as err:
        with session.begin_nested():  # as a request does: a refusal rolls back, the code with it
            counter.hold(session, desks[0], digits=digits, scenario_id=window.id, points=None,
                         idem_key="hold-0001", cfg=CFG)
    assert err.value.code == "not_a_spend_scenario"
    held, replayed = counter.hold(session, desks[0], digits=digits, scenario_id=rice.id, points=20,
                                  idem_key="hold-0002", cfg=CFG)
    assert not replayed and held.status == "held" and accounts.balance(session, account.id) == 80
    again, replayed = counter.hold(session, desks[0], digits=digits, scenario_id=rice.id, points=20,
                                   idem_key="hold-0002", cfg=CFG)
    assert replayed and again.id == held.id
    with pytest.raises(NotFound):
        counter.hold(session, desks[0], digits=digits, scenario_id=rice.id, points=20, idem_key="hold-0003", cfg=CFG)


@pytest.mark.concurrency
def test_the_same_request_twice_at_once_redeems_once(committed_factory):
    """Two tills send one request (same code, same key) at the same moment: the loser of the
    race on the code waits for the winner, then answers with the winner's redemption."""
    with committed_factory() as session:
        tree = f.region_tree(session)
        person = f.participant(session, tree.grid_a)
        account = f.account_of(session, person).id
        f.award(session, account, 100)
        partner, outlets, desks = f.shop(session, tree.town_a)
        rice = f.scenario(session, partner, outlets, points_cost=30)
        digits = f.code_for(session, person)
        session.commit()
    barrier = threading.Barrier(2)

    def attempt(_i: int) -> tuple[int, bool]:
        with committed_factory() as session:
            barrier.wait()
            done, replayed = counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id,
                                            idem_key=f"twin-{person.id}", cfg=CFG)
            session.commit()
            return done.id, replayed

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(attempt, range(2)))
    assert len({rid for rid, _r in results}) == 1 and sorted(r for _id, r in results) == [False, True]
    with committed_factory() as session:
        assert session.scalar(select(func.count()).select_from(Redemption)
                              .where(Redemption.participant_id == person.id)) == 1
        assert accounts.balance(session, account) == 70


def test_driver_errors_surface_as_sqlalchemy_errors(session, world):
    """The app answers 409 to a constraint race and 503 when busy; driver-run statements too."""
    _t, person, _a, _p, _o, _d, _r = world
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            driver_rows(session, "INSERT INTO one_time_codes (participant_id, code_digest, created_at, expires_at) "
                                 "VALUES (%(p)s, 'x', now(), now()), (%(p)s, 'x', now(), now()) RETURNING id",
                        {"p": person.id})
    assert driver_rows(session, "SELECT %(n)s AS n", {"n": 7})[0].n == 7  # and the session carries on


def test_memory_storage_counts_windows_and_frees_expired_keys():
    storage = LazyExpiryMemoryStorage()
    storage.SWEEP_SECONDS = 0.0
    assert [storage.incr("code:a", 0.05) for _ in range(3)] == [1, 2, 3]
    assert storage.get("code:a") == 3 and storage.incr("code:b", 60) == 1
    time.sleep(0.08)
    assert storage.get("code:a") == 0  # a finished window reads as empty at once
    assert storage.incr("code:a", 0.05) == 1  # and starts again
    time.sleep(0.08)
    storage.incr("code:c", 60)  # any hit sweeps what has expired
    assert "code:a" not in storage.storage and storage.get("code:b") == 1
    storage.reset()
    assert storage.get("code:b") == 0
