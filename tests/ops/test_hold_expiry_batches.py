"""The hold-expiry job over a backlog: each batch commits on its own, so a run that dies partway
keeps the holds it has released, and the next run releases the rest exactly once."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from ledger.services import accounts
from redemption import tasks
from redemption.models import Hold
from redemption.services import counter
from tests import factories as f

pytestmark = pytest.mark.concurrency


def test_a_run_that_dies_keeps_the_batches_it_released(committed_factory, monkeypatch):
    with committed_factory() as s:
        tree = f.region_tree(s)
        person = f.participant(s, tree.grid_a)
        account = f.account_of(s, person).id
        f.award(s, account, 100)
        partner, outlets, desks = f.shop(s, tree.town_a)
        rice = f.scenario(s, partner, outlets, points_cost=10)
        held = [counter.hold(s, desks[0], digits=f.code_for(s, person), scenario_id=rice.id, points=None,
                             idem_key=f"backlog-{person.id}-{i}", cfg=f.counter_config())[0].id for i in range(5)]
        s.commit()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)
    real = counter.expire_holds
    runs: list[int] = []

    def dies_on_the_third_batch(session: Any, actor: Any, cfg: Any, *, limit: int = 500, now: Any = None) -> int:
        runs.append(limit)
        if len(runs) == 3:
            raise RuntimeError("worker lost")
        return real(session, actor, cfg, now=later, limit=limit)

    monkeypatch.setattr(counter, "expire_holds", dies_on_the_third_batch)
    with pytest.raises(RuntimeError):
        tasks.expire_holds(batch=2)

    def status() -> dict[str, int]:
        with committed_factory() as s:
            return dict(s.execute(select(Hold.status, func.count()).where(Hold.id.in_(held))
                                  .group_by(Hold.status)).all())

    assert status() == {"expired": 4, "held": 1}  # two batches of two kept
    monkeypatch.setattr(counter, "expire_holds", lambda session, actor, cfg, *, limit=500, now=None:
                        real(session, actor, cfg, now=later, limit=limit))
    assert tasks.expire_holds(batch=2) == {"released": 1}
    assert status() == {"expired": 5}
    with committed_factory() as s:
        assert accounts.balance(s, account) == 100
