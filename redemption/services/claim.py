"""Claiming a one-time code for a counter write, together with everything the write then needs.

Why: a redemption used to be a dozen statements, each a round trip plus ORM work, on a machine
whose two cores the web workers share with PostgreSQL. On PostgreSQL one statement now checks
the outlet's idempotency key, finds the scenario at this outlet, marks the code used (only if
live and unused; the row lock makes a concurrent claimer wait, then see it used) and reads the
participant's and the partner's account ids. Other databases take the same steps one by one.

Nothing is decided here that the caller could not undo: every refusal raised afterwards rolls
the request's transaction back, and the code with it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.auth import Principal
from infra.driver import driver_rows, on_postgresql
from infra.errors import NotFound
from ledger.models import Account
from redemption.models import Hold, OneTimeCode, Redemption, Scenario, ScenarioOutlet

# What the counter reads of a scenario: eligibility, limits, the posting and the terms copy.
SCENARIO_COLUMNS = ("id", "code", "name_zh", "name_en", "partner_id", "kind", "points_cost", "required_grade",
                    "yuan_value_fen", "limit_day", "limit_month", "limit_year", "total_quota", "quota_used",
                    "valid_from", "valid_until", "terms_zh", "terms_en", "status")

CLAIM_SQL = """
WITH prior AS (
    SELECT id FROM {table} WHERE outlet_id = %(outlet_id)s AND idem_key = %(idem_key)s
), sc AS (
    SELECT {columns} FROM scenarios s
    JOIN scenario_outlets so ON so.scenario_id = s.id AND so.outlet_id = %(outlet_id)s
    WHERE s.id = %(scenario_id)s AND NOT EXISTS (SELECT 1 FROM prior)
), claimed AS (
    UPDATE one_time_codes SET used_at = %(now)s, used_by_outlet = %(outlet_id)s
    WHERE code_digest = %(code_digest)s AND used_at IS NULL AND expires_at > %(now)s AND EXISTS (SELECT 1 FROM sc)
    RETURNING participant_id
)
SELECT (SELECT id FROM prior) AS prior_id, sc.*, c.participant_id,
       (SELECT a.id FROM accounts a WHERE a.participant_id = c.participant_id) AS account_id,
       (SELECT a.id FROM accounts a WHERE a.code = 'partner:' || sc.partner_id) AS partner_account_id
FROM (VALUES (1)) AS one (x) LEFT JOIN sc ON true LEFT JOIN claimed c ON true
"""
_STATEMENTS = {model: CLAIM_SQL.format(table=model.__tablename__, columns=", ".join(f"s.{c}" for c in SCENARIO_COLUMNS))
               for model in (Redemption, Hold)}


@dataclass(frozen=True)
class Claim:
    """`prior_id`: this outlet already used the key (replay it). Otherwise the scenario (a row),
    and `participant_id` when the code was claimed (None: unknown, expired, used, or lost a race).
    Account ids are None when the account does not exist yet."""

    prior_id: int | None
    scenario: Any
    participant_id: int | None
    account_id: int | None
    partner_account_id: int | None


def claim(session: Session, outlet: Principal, model: type, *, scenario_id: int, code_digest: str, idem_key: str,
          now: dt.datetime) -> Claim:
    """Raises NotFound when the scenario is not honoured at this outlet (and then claims nothing)."""
    if on_postgresql(session):
        (row,) = driver_rows(session, _STATEMENTS[model], {
            "outlet_id": outlet.id, "idem_key": idem_key, "scenario_id": scenario_id, "code_digest": code_digest,
            "now": now})
        if row.prior_id is not None:
            return Claim(row.prior_id, None, None, None, None)
        if row.id is None:
            no_scenario(scenario_id)
        return Claim(None, row, row.participant_id, row.account_id, row.partner_account_id)
    return _claim_stepwise(session, outlet, model, scenario_id=scenario_id, code_digest=code_digest,
                           idem_key=idem_key, now=now)


def no_scenario(scenario_id: int) -> None:
    raise NotFound("Scenario not found at this outlet.", details={"scenario_id": [str(scenario_id)]})


def _claim_stepwise(session: Session, outlet: Principal, model: type, *, scenario_id: int, code_digest: str,
                    idem_key: str, now: dt.datetime) -> Claim:
    """The same steps as the statement above, one by one (SQLite has no data-modifying CTEs)."""
    prior = session.scalar(select(model.id).where(model.outlet_id == outlet.id, model.idem_key == idem_key))
    if prior is not None:
        return Claim(prior, None, None, None, None)
    scenario = session.execute(select(*[getattr(Scenario, c) for c in SCENARIO_COLUMNS]).join(ScenarioOutlet).where(
        Scenario.id == scenario_id, ScenarioOutlet.outlet_id == outlet.id)).first()
    if scenario is None:
        no_scenario(scenario_id)
    table = OneTimeCode.__table__
    claimed = session.execute(table.update().where(
        table.c.code_digest == code_digest, table.c.used_at.is_(None), table.c.expires_at > now)
        .values(used_at=now, used_by_outlet=outlet.id).returning(table.c.participant_id)).first()
    if claimed is None:
        return Claim(None, scenario, None, None, None)
    account_id = session.scalar(select(Account.id).where(Account.participant_id == claimed.participant_id))
    partner_account_id = session.scalar(select(Account.id).where(Account.code == f"partner:{scenario.partner_id}"))
    return Claim(None, scenario, claimed.participant_id, account_id, partner_account_id)
