"""A counter write sent twice with one idempotency key, the duplicate arriving while the first is
still in flight (a till that retries on a slow network), on PostgreSQL with real threads and
committed data: the duplicate gets the first's result once it commits (same content), or a 422
(other content), never a 409 as though another request had closed the hold."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from infra.errors import IdempotencyConflict
from ledger.services import accounts, integrity
from redemption.models import Redemption, Refund
from redemption.services import counter
from tests import factories as f
from tests.concurrency import while_holding

pytestmark = pytest.mark.concurrency
CFG = f.counter_config()


def _world(factory: sessionmaker[Session]) -> tuple[Any, int, Any, int]:
    with factory() as s:
        tree = f.region_tree(s)
        person = f.participant(s, tree.grid_a)
        account = f.account_of(s, person).id
        f.award(s, account, 100)
        partner, outlets, desks = f.shop(s, tree.town_a)
        rice = f.scenario(s, partner, outlets, points_cost=30, yuan_value_fen=3000)
        held, _ = counter.hold(s, desks[0], digits=f.code_for(s, person), scenario_id=rice.id, points=None,
                               idem_key=f"hold-{person.id}", cfg=CFG)
        s.commit()
        return desks[0], held.id, person, account


def test_a_capture_retried_while_in_flight_replays_the_first(committed_factory):
    desk, hold_id, person, account = _world(committed_factory)

    def capture(s: Session) -> tuple[Redemption, bool]:
        return counter.capture(s, desk, hold_id, points=25, idem_key=f"cap-{hold_id}", cfg=CFG)

    (first, replayed_first), second = while_holding(committed_factory, capture, capture)
    assert not replayed_first
    assert not isinstance(second, Exception), second
    again, replayed = second
    assert replayed and again.id == first.id and again.points == 25
    with committed_factory() as s:
        assert accounts.balance(s, account) == 75
        assert s.scalar(select(func.count()).select_from(Redemption).where(Redemption.participant_id == person.id)) == 1
        assert integrity.verify_chains(s, account_id=account).ok


def test_a_capture_key_reused_for_other_content_in_flight_is_a_422(committed_factory):
    desk, hold_id, _person, account = _world(committed_factory)
    key = f"cap-{hold_id}"
    _first, second = while_holding(
        committed_factory,
        lambda s: counter.capture(s, desk, hold_id, points=25, idem_key=key, cfg=CFG),
        lambda s: counter.capture(s, desk, hold_id, points=30, idem_key=key, cfg=CFG))
    assert isinstance(second, IdempotencyConflict), second
    with committed_factory() as s:
        assert accounts.balance(s, account) == 75


def test_a_full_refund_retried_while_in_flight_replays_the_first(committed_factory):
    desk, hold_id, _person, account = _world(committed_factory)
    with committed_factory() as s:
        redemption, _ = counter.capture(s, desk, hold_id, points=None, idem_key=f"cap-{hold_id}", cfg=CFG)
        s.commit()

    def refund(s: Session) -> tuple[Refund, bool]:
        return counter.refund(s, desk, redemption.id, points=None, reason="退货", idem_key=f"ref-{hold_id}", cfg=CFG)

    (first, _), second = while_holding(committed_factory, refund, refund)
    assert not isinstance(second, Exception), second
    again, replayed = second
    assert replayed and again.id == first.id
    with committed_factory() as s:
        assert accounts.balance(s, account) == 100
        assert s.scalar(select(func.count()).select_from(Refund).where(Refund.redemption_id == redemption.id)) == 1


def test_a_partial_refund_retried_while_in_flight_replays_the_first(committed_factory):
    desk, hold_id, _person, account = _world(committed_factory)
    with committed_factory() as s:
        redemption, _ = counter.capture(s, desk, hold_id, points=None, idem_key=f"cap-{hold_id}", cfg=CFG)
        s.commit()

    def refund(s: Session) -> tuple[Refund, bool]:
        return counter.refund(s, desk, redemption.id, points=10, reason="少给一袋", idem_key=f"ref-{hold_id}", cfg=CFG)

    (first, _), second = while_holding(committed_factory, refund, refund)
    assert not isinstance(second, Exception), second
    again, replayed = second
    assert replayed and again.id == first.id
    with committed_factory() as s:
        assert accounts.balance(s, account) == 80
        assert s.get(Redemption, redemption.id).refunded_points == 10
