"""Per-participant limits (day, month, year) and the scenario's quota: taken at the counter with
one conditional statement each, and given back when a redemption is refunded in full (it then
never happened for the participant's allowance nor for the stock; a partial refund leaves it
standing). The one-statement redemption (`redemption_redeem`) takes them in SQL the same way."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from infra.db import dialect_insert
from redemption.models import Redemption, Scenario, UsageCounter
from redemption.services import refusals
from redemption.services.common import periods


def take(session: Session, participant_id: int, scenario: Any, today: dt.date) -> None:
    """All of the scenario's period limits in one conditional upsert (a row per period; a full
    period returns nothing), then the quota with a guarded UPDATE."""
    table = UsageCounter.__table__
    keys = periods(today)
    wanted = [(period, keys[period], limit) for period, limit in (
        ("day", scenario.limit_day), ("month", scenario.limit_month), ("year", scenario.limit_year))
        if limit is not None]
    if wanted:
        limit_of = case(*[(table.c.period == key, limit) for _p, key, limit in wanted])
        stmt = (dialect_insert(session)(table).values([
            {"participant_id": participant_id, "scenario_id": scenario.id, "period": key, "used": 1}
            for _p, key, _l in wanted])
            .on_conflict_do_update(index_elements=["participant_id", "scenario_id", "period"],
                                   set_={"used": table.c.used + 1}, where=table.c.used < limit_of)
            .returning(table.c.period))
        taken = set(session.scalars(stmt).all())
        for period, key, limit in wanted:
            if key not in taken:
                refusals.limit_refused(period, limit)
    if scenario.total_quota is not None:
        taken_quota = session.execute(update(Scenario).where(Scenario.id == scenario.id,
                                                             Scenario.quota_used < Scenario.total_quota)
                                      .values(quota_used=Scenario.quota_used + 1)
                                      .execution_options(synchronize_session=False))
        if taken_quota.rowcount != 1:
            refusals.quota_refused()


def give_back(session: Session, redemption: Redemption, day: dt.date) -> None:
    """Undo what `take` took for `redemption`, made on `day` (the county's calendar): the periods
    its terms had a limit for, and a unit of the quota. Guarded so that no counter goes below zero."""
    table = UsageCounter.__table__
    keys = periods(day)
    taken = [keys[p] for p in ("day", "month", "year") if redemption.terms.get(f"limit_{p}") is not None]
    if taken:
        session.execute(table.update().where(
            table.c.participant_id == redemption.participant_id, table.c.scenario_id == redemption.scenario_id,
            table.c.period.in_(taken), table.c.used > 0).values(used=table.c.used - 1))
    session.execute(update(Scenario).where(Scenario.id == redemption.scenario_id, Scenario.total_quota.is_not(None),
                                           Scenario.quota_used > 0)
                    .values(quota_used=Scenario.quota_used - 1).execution_options(synchronize_session=False))
