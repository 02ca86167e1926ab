"""The scenario catalogue: seeded from `redemption/data/scenarios.json` (partners, outlets and the
103 scenarios), managed by staff afterwards. Changing terms affects future redemptions only."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity import services as identity
from identity.models import Outlet, Partner, Region
from infra.auth import Principal
from infra.clock import local_date
from infra.db import utcnow
from infra.errors import Conflict, Forbidden, NotFound, ValidationFailed, on_unique_violation
from ledger.services import accounts
from redemption.models import FAMILIES, Scenario, ScenarioOutlet
from redemption.services.common import fen
from scoring.services import rules

DATA = Path(__file__).resolve().parent.parent / "data" / "scenarios.json"
EDITABLE = ("name_zh", "name_en", "family", "points_cost", "required_grade", "yuan_value_fen", "limit_day",
            "limit_month", "limit_year", "total_quota", "stock_note", "valid_from", "valid_until", "terms_zh",
            "terms_en")
# What a change must touch for the required grade to be checked again against the rules.
GRADE_TERMS = frozenset({"required_grade", "valid_from", "valid_until"})


def seed(session: Session, shards: int, data: dict[str, Any] | None = None) -> dict[str, int]:
    """Create the partners, outlets and scenarios of the data file that do not exist yet."""
    data = data or json.loads(DATA.read_text())
    regions = {r.code: r for r in session.scalars(select(Region))}
    outlets_by_key: dict[str, Outlet] = {}
    made = {"partners": 0, "outlets": 0, "scenarios": 0}
    for p in data["partners"]:
        region = regions.get(p["region"]) or next(iter(r for r in regions.values() if r.parent_id is None), None)
        if region is None:
            raise ValidationFailed("Load regions first.", details={"region": [p["region"]]})
        partner = session.scalar(select(Partner).where(Partner.code == p["code"]))
        if partner is None:
            partner = identity.create_partner(session, code=p["code"], name=p["name_zh"], name_en=p["name_en"],
                                              region=region)
            made["partners"] += 1
        accounts.partner_account(session, partner.id, shards)
        existing = {o.name: o for o in partner.outlets}
        for o in p["outlets"]:
            outlet = existing.get(o["name"])
            if outlet is None:
                outlet = identity.create_outlet(session, partner, name=o["name"], address=o.get("address"),
                                                region=regions.get(o["region"], region))
                made["outlets"] += 1
            outlets_by_key[o["key"]] = outlet
    partners = {p.code: p for p in session.scalars(select(Partner))}
    known = set(session.scalars(select(Scenario.code)))
    for s in data["scenarios"]:
        if s["code"] in known:
            continue
        partner = partners[s["partner"]]
        keys = [o["key"] for p in data["partners"] if p["code"] == s["partner"] for o in p["outlets"]] \
            if s["outlets"] == "all" else s["outlets"]
        scenario = Scenario(
            code=s["code"], family=s["family"], name_zh=s["name_zh"], name_en=s["name_en"], partner_id=partner.id,
            kind=s["kind"], points_cost=s["points_cost"], required_grade=s["required_grade"],
            yuan_value_fen=fen(s["yuan_value"]), limit_day=s["limit_day"], limit_month=s["limit_month"],
            limit_year=s["limit_year"], total_quota=s["total_quota"], stock_note=s.get("stock_note"),
            valid_from=dt.date.fromisoformat(s["valid_from"]),
            valid_until=dt.date.fromisoformat(s["valid_until"]) if s["valid_until"] else None,
            terms_zh=s["terms_zh"], terms_en=s["terms_en"],
            outlets=[ScenarioOutlet(outlet_id=outlets_by_key[k].id) for k in keys])
        check(scenario, defined_grades(session, scenario))
        session.add(scenario)
        made["scenarios"] += 1
    session.flush()
    return made


def defined_grades(session: Session, s: Scenario) -> list[str]:
    """The grades a scenario may require: those the published rules define on some day it can
    still be used (from today, or its start if later, to its end), since eligibility ranks grades
    by the rule set in force on the day. A scenario already over keeps the rules of its own dates."""
    start, end = max(s.valid_from, local_date()), s.valid_until
    if end is not None and end < start:
        start = s.valid_from
    return rules.grades_in_force(session, start, end)


def check(s: Scenario, grades: list[str] | None = None) -> None:
    """Field-level checks shared by seeding and staff edits. `grades`: the grade names the rules
    define for the scenario's dates (`defined_grades`); None leaves the grade's name unchecked."""
    problems: dict[str, list[str]] = {}
    if s.family not in FAMILIES:
        problems["family"] = [f"One of {', '.join(FAMILIES)}."]
    if s.kind == "spend" and not (s.points_cost and s.points_cost > 0):
        problems["points_cost"] = ["A spend scenario costs points."]
    if s.kind == "privilege":
        if s.points_cost:
            problems["points_cost"] = ["A privilege deducts nothing."]
        if s.required_grade is None:
            problems["required_grade"] = ["A privilege requires a grade."]
    if s.required_grade is not None and grades is not None and s.required_grade not in grades:
        problems["required_grade"] = [
            f"Not a grade of the rules in force on the scenario's dates; one of {', '.join(grades)}." if grades
            else "No published rules define grades on the scenario's dates."]
    for name in ("limit_day", "limit_month", "limit_year", "total_quota"):
        value = getattr(s, name)
        if value is not None and value < 1:
            problems[name] = ["At least 1, or empty for no limit."]
    if s.valid_until is not None and s.valid_until < s.valid_from:
        problems["valid_until"] = ["Ends before it starts."]
    if problems:
        raise ValidationFailed("The scenario is invalid.", details=problems)


def _in_scope(session: Session, actor: Principal, scenario_id: int) -> tuple[Scenario, Partner]:
    """A scenario staff may manage, with its partner: one 404 for missing and out of scope (a
    scenario of another township's partner read "Partner not found", telling that it exists)."""
    scenario = session.get(Scenario, scenario_id)
    partner = session.get(Partner, scenario.partner_id) if scenario is not None else None
    if scenario is None or partner is None or not actor.in_scope(identity.partner_path(session, partner)):
        raise NotFound("Scenario not found.")
    return scenario, partner


def list_all(session: Session, *, partner_id: int | None = None, family: str | None = None) -> list[Scenario]:
    """The catalogue, each scenario with `places`: the open outlets (of an open partner) that
    honour it, name and address, so that a participant knows where to go. One query for them all."""
    stmt = select(Scenario).order_by(Scenario.code)
    if partner_id:
        stmt = stmt.where(Scenario.partner_id == partner_id)
    if family:
        stmt = stmt.where(Scenario.family == family)
    items = list(session.scalars(stmt))
    places = open_places(session, [s.id for s in items])
    for s in items:
        s.places = places[s.id]  # type: ignore[attr-defined]  # for CatalogueScenarioOut only
    return items


def open_places(session: Session, scenario_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Scenario id -> the outlets that can serve it now (open, of an open partner: a suspended
    one's keys are refused), id, name and address, in one query."""
    places: dict[int, list[dict[str, Any]]] = {i: [] for i in scenario_ids}
    if scenario_ids:
        for scenario_id, outlet_id, name, address in session.execute(
                select(ScenarioOutlet.scenario_id, Outlet.id, Outlet.name, Outlet.address)
                .join(Outlet, Outlet.id == ScenarioOutlet.outlet_id).join(Partner, Partner.id == Outlet.partner_id)
                .where(ScenarioOutlet.scenario_id.in_(scenario_ids), Outlet.active, Partner.active)
                .order_by(ScenarioOutlet.scenario_id, Outlet.id)):
            places[scenario_id].append({"id": outlet_id, "name": name, "address": address})
    return places


def _code_taken() -> Conflict:
    return Conflict("Scenario code taken.", details={"code": ["Already taken."]})


on_unique_violation("uq_scenarios_code", _code_taken)  # two creations at once: as one after the other


def create(session: Session, actor: Principal, values: dict[str, Any]) -> Scenario:
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin manages scenarios.", code="role_required")
    partner = identity.get_partner_in_scope(session, actor, values["partner_id"], field="partner_id")
    if session.scalar(select(Scenario.id).where(Scenario.code == values["code"])):
        raise _code_taken()
    outlet_ids = values.pop("outlet_ids")
    scenario = Scenario(**values, outlets=[ScenarioOutlet(outlet_id=o) for o in _partner_outlets(
        session, actor, values["partner_id"], outlet_ids)])
    check(scenario, defined_grades(session, scenario))
    session.add(scenario)
    session.flush()
    identity.audit(session, actor, "scenario.create", object_type="scenario", object_id=scenario.id,
                   region_path=identity.partner_path(session, partner),
                   details={"code": scenario.code, "outlet_ids": sorted(set(outlet_ids))})
    return scenario


def _partner_outlets(session: Session, actor: Principal, partner_id: int, outlet_ids: list[int]) -> list[int]:
    """The partner's outlets the staff member named, each inside their scope. One outside it is
    refused exactly like one that does not exist, so the answer does not say that it does."""
    valid = set(session.scalars(select(Outlet.id).join(Region, Region.id == Outlet.region_id).where(
        Outlet.partner_id == partner_id, Outlet.id.in_(outlet_ids), actor.scope_filter(Region.path))))
    if set(outlet_ids) - valid or not outlet_ids:
        raise ValidationFailed("Choose outlets of this partner.", details={"outlet_ids": ["Not this partner's outlets."]})
    return sorted(valid)


def _outlets_beyond_scope(session: Session, actor: Principal, scenario: Scenario) -> list[int]:
    """The scenario's outlets outside the staff member's scope: a change of outlets by township
    staff keeps them, since where the next township's branch honours a scenario is not theirs."""
    current = [o.outlet_id for o in scenario.outlets]
    visible = set(session.scalars(select(Outlet.id).join(Region, Region.id == Outlet.region_id).where(
        Outlet.id.in_(current), actor.scope_filter(Region.path))))
    return [o for o in current if o not in visible]


def update(session: Session, actor: Principal, scenario_id: int, changes: dict[str, Any]) -> Scenario:
    """Change future terms. Past redemptions keep the terms they were made under."""
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin manages scenarios.", code="role_required")
    scenario, partner = _in_scope(session, actor, scenario_id)
    if "total_quota" in changes:  # what counters have used, as of now: they wait for this change
        session.refresh(scenario, attribute_names=["quota_used", "total_quota"], with_for_update=True)
    _refuse_past_dates(scenario, changes)
    before = {k: str(getattr(scenario, k)) for k in changes if k in EDITABLE}
    after = {k: str(changes[k]) for k in before}
    if "outlet_ids" in changes:  # where a scenario may be redeemed is a term like any other
        outlet_ids = sorted(_partner_outlets(session, actor, scenario.partner_id, changes["outlet_ids"])
                            + _outlets_beyond_scope(session, actor, scenario))
        before["outlet_ids"] = sorted(o.outlet_id for o in scenario.outlets)
        after["outlet_ids"] = outlet_ids
    for key, value in changes.items():
        if key == "outlet_ids":
            scenario.outlets = [ScenarioOutlet(outlet_id=o) for o in outlet_ids]
        elif key in EDITABLE:
            setattr(scenario, key, value)
    if scenario.total_quota is not None and scenario.total_quota < scenario.quota_used:
        raise ValidationFailed("The quota is below what is already used.",
                               details={"total_quota": [f"At least {scenario.quota_used}."]})
    # The grade is checked when it or the dates change: terms edited alone never fail on a grade
    # that later rules renamed (eligibility then says `grade_not_defined` at the counter).
    check(scenario, defined_grades(session, scenario) if GRADE_TERMS & changes.keys() else None)
    scenario.updated_at = utcnow()
    session.flush()
    identity.audit(session, actor, "scenario.update", object_type="scenario", object_id=scenario.id,
                   region_path=identity.partner_path(session, partner), details={"before": before, "after": after})
    return scenario


def _refuse_past_dates(scenario: Scenario, changes: dict[str, Any]) -> None:
    """A change of dates is a change of future terms: it must not say that redemptions already
    made fell outside the scenario's dates. An end moves to today at the earliest (a suspension
    stops a scenario at once); a start moves only while the scenario has not begun, and to a day
    not yet gone. Dates sent back unchanged are no change."""
    today = local_date()
    problems: dict[str, list[str]] = {}
    until = changes.get("valid_until", scenario.valid_until)
    if "valid_until" in changes and until != scenario.valid_until and until is not None and until < today:
        problems["valid_until"] = [f"Today ({today.isoformat()}) at the earliest; suspend the scenario to stop it now."]
    start = changes.get("valid_from", scenario.valid_from)
    if start != scenario.valid_from:
        if scenario.valid_from <= today:
            problems["valid_from"] = [f"Began on {scenario.valid_from.isoformat()}; a start already passed stays."]
        elif start < today:
            problems["valid_from"] = [f"Today ({today.isoformat()}) at the earliest."]
    if problems:
        raise ValidationFailed("A change cannot move the scenario's dates into the past.", details=problems)


def set_status(session: Session, actor: Principal, scenario_id: int, status: str) -> Scenario:
    if not actor.has_role("admin"):
        raise Forbidden("Only an admin manages scenarios.", code="role_required")
    scenario, partner = _in_scope(session, actor, scenario_id)
    scenario.status = status
    scenario.updated_at = utcnow()
    session.flush()
    identity.audit(session, actor, f"scenario.{'suspend' if status == 'suspended' else 'resume'}",
                   object_type="scenario", object_id=scenario.id, region_path=identity.partner_path(session, partner))
    return scenario
