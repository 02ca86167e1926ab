"""Per-participant limits (day, month, year) and the scenario's quota: taken at the counter with
one conditional statement each, and given back when a redemption is refunded in full (it then
never happened for the participant's allowance nor for the stock; a partial refund leaves it
standing). The one-statement redemption (`redemption_redeem`) takes them in SQL the same way.

Each redemption records what was taken for it (`Redemption.consumed`: the usage counters' periods
and whether a unit of the quota), and a full refund gives back exactly that. Staff may change a
scenario's limits and quota between a redemption and its refund: a quota added since was never
taken by it and is not given back (that would make stock out of nothing); a unit it took comes
back even if the quota was lifted since, so that the count is right when a quota is set again."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from infra.db import dialect_insert
from redemption.models import Redemption, Scenario, UsageCounter
from redemption.services import refusals
from redemption.services.common import periods


def consumption(scenario: Any, today: dt.date) -> dict[str, Any]:
    """What `take` takes for a redemption of `scenario` (a Scenario or a row with its columns) on
    `today`, as the redemption records it: the period keys of its limits and whether a unit of
    its quota. `redemption_redeem` records the same in SQL (migration 0019)."""
    keys = periods(today)
    return {"periods": [keys[p] for p, limit in (("day", scenario.limit_day), ("month", scenario.limit_month),
                                                 ("year", scenario.limit_year)) if limit is not None],
            "quota": scenario.total_quota is not None}


def take(session: Session, participant_id: int, scenario: Any, today: dt.date) -> dict[str, Any]:
    """All of the scenario's period limits in one conditional upsert (a row per period; a full
    period returns nothing), then the quota with a guarded UPDATE. Returns what it took
    (`consumption`), for the redemption to record."""
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
    return consumption(scenario, today)


def give_back(session: Session, redemption: Redemption, day: dt.date) -> None:
    """Undo what `take` took for `redemption`: the usage counters and the unit of quota it
    recorded (`consumed`), whatever the scenario's limits and quota are now. Guarded so that no
    counter goes below zero. A redemption made before the record was kept (migration 0019) gives
    back the periods its terms had a limit for, on `day` (the county's calendar, when it was
    made), and a unit of the quota if the scenario has one now, as before."""
    consumed = redemption.consumed
    if consumed is None:  # before migration 0019
        keys = periods(day)
        taken = [keys[p] for p in ("day", "month", "year") if redemption.terms.get(f"limit_{p}") is not None]
        unit = [Scenario.total_quota.is_not(None)]  # a unit back only if the scenario has a quota now
    else:
        taken = list(consumed["periods"])
        unit = [] if consumed["quota"] else None  # its unit back, whatever the quota is now; else none
    table = UsageCounter.__table__
    if taken:
        session.execute(table.update().where(
            table.c.participant_id == redemption.participant_id, table.c.scenario_id == redemption.scenario_id,
            table.c.period.in_(taken), table.c.used > 0).values(used=table.c.used - 1))
    if unit is not None:
        session.execute(update(Scenario).where(Scenario.id == redemption.scenario_id, Scenario.quota_used > 0, *unit)
                        .values(quota_used=Scenario.quota_used - 1).execution_options(synchronize_session=False))
