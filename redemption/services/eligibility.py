"""Which scenarios a participant can use now, and for each one they cannot, why."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.services import accounts
from identity.models import Partner
from redemption.models import Scenario, UsageCounter
from redemption.services import catalogue
from redemption.services.common import local_date, periods
from scoring.services import grades

REASONS = {
    "suspended": ("该场景已暂停", "This scenario is suspended"),
    "not_started": ("尚未开始", "Not started yet"),
    "ended": ("已结束", "Has ended"),
    "grade_required": ("信用等级不足", "A higher credit grade is required"),
    "grade_not_defined": ("现行等级规则中没有该场景要求的等级", "The rules in force define no such grade"),
    "insufficient_points": ("积分不足", "Not enough points"),
    "limit_day": ("今日次数已用完", "Daily limit reached"),
    "limit_month": ("本月次数已用完", "Monthly limit reached"),
    "limit_year": ("本年次数已用完", "Yearly limit reached"),
    "quota_exhausted": ("名额或库存已用完", "Quota or stock exhausted"),
    "partner_suspended": ("合作方已暂停服务", "The partner is suspended"),
    "no_outlet_open": ("暂无可办理的网点", "No outlet offering it is open"),
}


@dataclass
class Verdict:
    scenario: Scenario
    reasons: list[dict[str, Any]] = field(default_factory=list)
    # Where it can be used now: the open outlets of an open partner (None at a counter, which is one)
    places: list[dict[str, Any]] | None = None

    @property
    def eligible(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class Standing:
    participant_id: int
    account_id: int
    balance: int
    grade: str | None
    today: dt.date
    # The grade codes of the rule set the grade came from, highest first; empty when no grade was read.
    ladder: tuple[str, ...] = ()


def standing(session: Session, participant_id: int, *, now: dt.datetime, timezone: str,
             with_grade: bool = True) -> Standing:
    """Balance and grade. The grade (a sum over a year of entries) is skipped when the caller
    knows no scenario in play requires one."""
    account = accounts.participant_account(session, participant_id)
    view = grades.grade(session, participant_id) if with_grade else None
    return Standing(participant_id=participant_id, account_id=account.id,
                    balance=accounts.balance(session, account.id),
                    grade=view.grade["code"] if view and view.grade else None, today=local_date(now, timezone),
                    ladder=view.ladder if view else ())


def grade_reason(have: str | None, need: str | None, ladder: tuple[str, ...]) -> dict[str, Any] | None:
    """Why `have` does not meet `need`, or None when it does. Grades rank by the rule set's own list
    (highest threshold first), since a rule set names its grades: a grade outside the list ranks
    below every requirement, and a requirement the rules in force do not define cannot be met;
    it gets its own reason, because no amount of points would meet it."""
    if need is None:
        return None
    if need not in ladder:
        return {"code": "grade_not_defined", "need": need, "have": have}
    if have is None or have not in ladder or ladder.index(have) > ladder.index(need):
        return {"code": "grade_required", "need": need, "have": have}
    return None


def static_reasons(s: Any, today: dt.date, grade: str | None, ladder: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The reasons that need no counter or balance: status, dates, grade (ranked on `ladder`, the
    rule set's grade codes, highest first). `s` is a Scenario or a row with the same columns (the
    counter's claim reads one without building an ORM object)."""
    reasons: list[dict[str, Any]] = []
    if s.status != "active":
        reasons.append({"code": "suspended"})
    if today < s.valid_from:
        reasons.append({"code": "not_started", "from": s.valid_from.isoformat()})
    if s.valid_until is not None and today > s.valid_until:
        reasons.append({"code": "ended", "until": s.valid_until.isoformat()})
    if (why := grade_reason(grade, s.required_grade, ladder)) is not None:
        reasons.append(why)
    return reasons


def closed(session: Session, scenarios: list[Scenario]) -> tuple[dict[int, str], dict[int, list[dict[str, Any]]]]:
    """Scenario id -> why no counter can serve it now: its partner suspended (every key of its
    outlets is refused) or none of its outlets open (each suspended outlet's keys are refused);
    and scenario id -> the open outlets that can (`catalogue.open_places`)."""
    if not scenarios:
        return {}, {}
    stopped = set(session.scalars(select(Partner.id).where(
        Partner.id.in_({s.partner_id for s in scenarios}), Partner.active.is_(False))))
    places = catalogue.open_places(session, [s.id for s in scenarios])
    return ({s.id: "partner_suspended" if s.partner_id in stopped else "no_outlet_open"
             for s in scenarios if not places[s.id]}, places)


def evaluate(session: Session, who: Standing, scenarios: list[Scenario], *, reveal_balance: bool = True,
             at_counter: bool = False) -> list[Verdict]:
    """`reveal_balance=False` for counters: they learn whether the points suffice, never how many.
    `at_counter`: the caller is an outlet whose key was just accepted, so it and its partner are
    open; otherwise a scenario that no counter can serve now says why (`closed`)."""
    keys = periods(who.today)
    shut, places = ({}, {}) if at_counter else closed(session, scenarios)
    limited = [s.id for s in scenarios if s.limit_day or s.limit_month or s.limit_year]
    used = {(c.scenario_id, c.period): c.used for c in session.scalars(select(UsageCounter).where(
        UsageCounter.participant_id == who.participant_id, UsageCounter.period.in_(keys.values()),
        UsageCounter.scenario_id.in_(limited)))} if limited else {}
    verdicts = []
    for s in scenarios:
        v = Verdict(scenario=s, reasons=static_reasons(s, who.today, who.grade, who.ladder), places=places.get(s.id))
        if s.id in shut:
            v.reasons.insert(0, {"code": shut[s.id]})
        if s.kind == "spend" and who.balance < s.points_cost:
            v.reasons.append({"code": "insufficient_points", "need": s.points_cost,
                              "have": who.balance if reveal_balance else None})
        for period, limit in (("day", s.limit_day), ("month", s.limit_month), ("year", s.limit_year)):
            if limit is not None and used.get((s.id, keys[period]), 0) >= limit:
                v.reasons.append({"code": f"limit_{period}", "limit": limit})
        if s.total_quota is not None and s.quota_used >= s.total_quota:
            v.reasons.append({"code": "quota_exhausted"})
        verdicts.append(v)
    return verdicts
