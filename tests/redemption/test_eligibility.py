"""Eligibility ranks grades by the rule set in force, which names its own grades."""
from __future__ import annotations

import datetime as dt

import pytest

from infra.errors import Conflict
from redemption.services import counter, eligibility
from scoring.services import rules
from tests import factories as f

CFG = f.counter_config()
WITH_B = [{"code": "AAA", "min_points": 300, "zh": "AAA", "en": "AAA"},
          {"code": "AA", "min_points": 150, "zh": "AA", "en": "AA"},
          {"code": "A", "min_points": 50, "zh": "A", "en": "A"},
          {"code": "B", "min_points": 20, "zh": "B 级（起步）", "en": "B (starter)"}]


def _publish_grades(session, tree, grades: list[dict], **changes) -> None:
    """A new rule set, in force from today, whose grades are `grades` (highest first)."""
    admin = f.staff(session, "admin", tree.county)
    draft = rules.draft_from(session, admin, 1)
    rules.update_draft(session, admin, draft.version, {"grades": grades, **changes})
    rules.publish(session, admin, draft.version)  # validation lets a rule set name its grades


@pytest.fixture
def graded_b(session):
    """A participant with 30 points earned, grade B under a rule set that adds B below A."""
    tree = f.region_tree(session)
    _publish_grades(session, tree, WITH_B)
    person = f.participant(session, tree.grid_a)
    f.award(session, f.account_of(session, person).id, 30)
    partner, outlets, desks = f.shop(session, tree.town_a)
    return tree, person, partner, outlets, desks


def _standing(session, person) -> eligibility.Standing:
    return eligibility.standing(session, person.id, now=dt.datetime.now(dt.timezone.utc), timezone="Asia/Shanghai")


def test_a_rule_set_grade_below_A_does_not_crash_eligibility(session, graded_b):
    _tree, person, partner, outlets, desks = graded_b
    vip = f.scenario(session, partner, outlets, kind="privilege", points_cost=0, required_grade="A")
    starter = f.scenario(session, partner, outlets, kind="privilege", points_cost=0, required_grade="B")
    who = _standing(session, person)
    assert who.grade == "B"
    verdicts = {v.scenario.id: [r["code"] for r in v.reasons]
                for v in eligibility.evaluate(session, who, [vip, starter])}
    assert verdicts == {vip.id: ["grade_required"], starter.id: []}  # was a ValueError: 'B' is not in tuple
    assert who.ladder == ("AAA", "AA", "A", "B")
    view = counter.lookup(session, desks[0], f.code_for(session, person), CFG)  # the counter's look-up too
    assert view.grade == "B" and {v.scenario.id: v.eligible for v in view.verdicts} == {vip.id: False, starter.id: True}
    with pytest.raises(Conflict) as err:
        with session.begin_nested():
            counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=vip.id,
                           idem_key="grade-b-0001", cfg=CFG)
    assert err.value.code == "grade_required"
    used, _ = counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=starter.id,
                             idem_key="grade-b-0002", cfg=CFG)
    assert used.kind == "privilege"


def test_a_grade_the_rules_in_force_do_not_define_cannot_be_met_and_says_why(session):
    tree = f.region_tree(session)
    _publish_grades(session, tree, [{"code": "STAR2", "min_points": 100, "zh": "二星", "en": "Two stars"},
                                    {"code": "STAR1", "min_points": 10, "zh": "一星", "en": "One star"}],
                    honours={"most_beautiful_family": {"min_points": 200, "min_grade": "STAR2"},
                             "loan_priority": {"min_points": 150}})
    person = f.participant(session, tree.grid_a)
    f.award(session, f.account_of(session, person).id, 500)
    partner, outlets, desks = f.shop(session, tree.town_a)
    loan = f.scenario(session, partner, outlets, kind="privilege", points_cost=0, required_grade="AA")
    who = _standing(session, person)
    assert who.grade == "STAR2"  # the top grade, yet "AA" is no grade of these rules
    (verdict,) = eligibility.evaluate(session, who, [loan])
    assert verdict.reasons == [{"code": "grade_not_defined", "need": "AA", "have": "STAR2"}]
    with pytest.raises(Conflict) as err:
        with session.begin_nested():
            counter.redeem(session, desks[0], digits=f.code_for(session, person), scenario_id=loan.id,
                           idem_key="grade-x-0001", cfg=CFG)
    assert err.value.code == "grade_not_defined"


def test_grade_reason_ranks_on_the_ladder_given():
    ladder = ("AAA", "AA", "A", "B")
    assert eligibility.grade_reason("AA", "A", ladder) is None
    assert eligibility.grade_reason("A", "A", ladder) is None
    assert eligibility.grade_reason("B", "A", ladder)["code"] == "grade_required"
    assert eligibility.grade_reason(None, "B", ladder)["code"] == "grade_required"
    assert eligibility.grade_reason("OLD", "B", ladder)["code"] == "grade_required"  # unknown ranks below all
    assert eligibility.grade_reason("AAA", "Z", ladder)["code"] == "grade_not_defined"
    assert eligibility.grade_reason(None, None, ()) is None


def test_a_scenario_no_counter_can_serve_is_not_shown_as_usable(client, session):
    """A suspended partner's keys, or a suspended outlet's, are refused at once: the participant's
    list must not call its scenarios usable, or they walk to a counter that cannot redeem."""
    from admin import services as admin

    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    f.award(session, f.account_of(session, person).id, 100)
    shut, shut_outlets, _ = f.shop(session, tree.town_a, outlets=1)
    shop, shop_outlets, _ = f.shop(session, tree.town_a, outlets=2)
    at_shut = f.scenario(session, shut, shut_outlets)
    at_closed_outlet = f.scenario(session, shop, shop_outlets[:1])
    at_open_outlet = f.scenario(session, shop, shop_outlets)
    county_admin = f.staff(session, "admin", tree.county)
    admin.set_partner_active(session, county_admin, shut.id, False)
    admin.set_outlet_active(session, county_admin, shop_outlets[0].id, False)
    listed = client.get("/api/v1/me/eligibility", headers=f.bearer(session, "participant", person.id))
    assert listed.status_code == 200
    verdicts = {v["scenario"]["id"]: (v["eligible"], [r["code"] for r in v["reasons"]]) for v in listed.json}
    assert verdicts[at_shut.id] == (False, ["partner_suspended"])  # was (True, [])
    assert verdicts[at_closed_outlet.id] == (False, ["no_outlet_open"])
    assert verdicts[at_open_outlet.id] == (True, [])
    reason = next(v for v in listed.json if v["scenario"]["id"] == at_shut.id)["reasons"][0]
    assert reason["message"] != reason["code"]
    # Each says where it can be used now: the open outlets only; none where no counter can serve it.
    places = {v["scenario"]["id"]: [p["name"] for p in v["places"]] for v in listed.json}
    assert places[at_open_outlet.id] == [shop_outlets[1].name]
    assert places[at_shut.id] == [] and places[at_closed_outlet.id] == []
