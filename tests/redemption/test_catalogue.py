"""The 103 scenarios load from the county's data file, and are checked field by field."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from identity import services as identity
from identity.models import Partner
from infra.clock import local_date
from infra.errors import ValidationFailed
from redemption.models import FAMILIES, Scenario
from redemption.services import catalogue
from scoring.services import rules
from tests import factories as f


def test_the_seed_file_loads_103_scenarios_once(session, client):
    county = identity.create_region(session, level="county", code="JY", name="解忧县")
    for n, name in enumerate(("城关镇", "河西乡", "青山镇", "柳林乡"), start=1):
        identity.create_region(session, level="township", code=f"JY{n:02d}", name=name, parent=county)
    made = catalogue.seed(session, f.SHARDS)
    assert made["scenarios"] == 103 and made["partners"] >= 25
    assert catalogue.seed(session, f.SHARDS)["scenarios"] == 0
    # Only the seed's own scenarios: tests that commit (the concurrency ones) leave theirs behind.
    seeded = Scenario.code.in_([s["code"] for s in json.loads(catalogue.DATA.read_text())["scenarios"]])
    kinds = dict(session.execute(select(Scenario.kind, func.count()).where(seeded).group_by(Scenario.kind)).all())
    assert kinds["spend"] + kinds["privilege"] == 103 and kinds["privilege"] >= 30
    assert set(session.scalars(select(Scenario.family).where(seeded).distinct())) <= set(FAMILIES)
    assert session.scalar(select(Partner.name).where(Partner.code == "HUIMIN")) == "惠民连锁超市"
    listed = client.get("/api/v1/scenarios", query_string={"family": "loans"},
                        environ_base={"HTTP_ACCEPT_LANGUAGE": "en"}).json
    assert listed and all(s["family"] == "loans" for s in listed)
    assert all(s["name"] == s["name_en"] for s in listed)


@pytest.mark.parametrize("changes, field", [
    ({"kind": "privilege", "points_cost": 0, "required_grade": None}, "required_grade"),
    ({"kind": "spend", "points_cost": 0}, "points_cost"),
    ({"family": "casino"}, "family"),
    ({"valid_from": dt.date(2026, 5, 1), "valid_until": dt.date(2026, 4, 1)}, "valid_until"),
])
def test_invalid_scenarios_name_the_field(changes, field):
    base = {"code": "X1", "family": "shopping", "name_zh": "x", "name_en": "x", "partner_id": 1, "kind": "spend",
            "points_cost": 5, "required_grade": None, "yuan_value_fen": 0, "valid_from": dt.date(2024, 1, 1),
            "valid_until": None, "limit_day": None, "limit_month": None, "limit_year": None, "total_quota": None}
    with pytest.raises(ValidationFailed) as err:
        catalogue.check(Scenario(**{**base, **changes}))
    assert field in err.value.details


STARS = [{"code": "STAR3", "min_points": 300, "zh": "三星", "en": "Three stars"},
         {"code": "STAR2", "min_points": 150, "zh": "二星", "en": "Two stars"},
         {"code": "STAR1", "min_points": 50, "zh": "一星", "en": "One star"}]
STAR_HONOURS = {"most_beautiful_family": {"min_points": 200, "min_grade": "STAR2"}, "loan_priority": {"min_points": 150}}


def _publish_stars(session, tree, effective_from: dt.date) -> None:
    """A rule set naming its grades STAR1..STAR3, in force from `effective_from`."""
    admin = f.staff(session, "admin", tree.county)
    draft = rules.draft_from(session, admin, 1)
    rules.update_draft(session, admin, draft.version, {"grades": STARS, "honours": STAR_HONOURS,
                                                       "effective_from": effective_from})
    rules.publish(session, admin, draft.version)


def _privilege_body(partner, outlets, grade: str, **extra) -> dict:
    return {"code": f.unique("G")[:16].upper(), "family": "loans", "name_zh": "贷款优先", "name_en": "Loan priority",
            "partner_id": partner.id, "outlet_ids": [o.id for o in outlets], "kind": "privilege", "points_cost": 0,
            "required_grade": grade, "valid_from": local_date().isoformat(), **extra}


def test_a_scenario_requires_a_grade_the_rules_in_force_name(client, session):
    tree = f.region_tree(session)
    partner, outlets, _desks = f.shop(session, tree.town_a)
    old = f.scenario(session, partner, outlets, kind="privilege", points_cost=0, required_grade="AA")
    _publish_stars(session, tree, local_date())
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    made = client.post("/api/v1/admin/scenarios", headers=admin, json=_privilege_body(partner, outlets, "STAR2"))
    assert made.status_code == 201 and made.json["required_grade"] == "STAR2"
    for grade in ("AA", "GOLD"):  # the grades of rules no longer in force, and no grade at all
        refused = client.post("/api/v1/admin/scenarios", headers=admin, json=_privilege_body(partner, outlets, grade))
        assert refused.status_code == 422, grade
        assert list(refused.json["error"]["details"]) == ["required_grade"]
        assert "STAR3, STAR2, STAR1" in refused.json["error"]["details"]["required_grade"][0]
    url = f"/api/v1/admin/scenarios/{made.json['id']}"
    assert client.patch(url, headers=admin, json={"required_grade": "STAR1"}).json["required_grade"] == "STAR1"
    refused = client.patch(url, headers=admin, json={"required_grade": "AAA"})
    assert refused.status_code == 422 and "required_grade" in refused.json["error"]["details"]
    too_long = client.patch(url, headers=admin, json={"required_grade": "S" * 11})
    assert too_long.status_code == 422 and "required_grade" in too_long.json["error"]["details"]
    # Terms changed alone stand on a scenario whose grade the new rules renamed; its grade is
    # checked again once it is changed (or its dates are).
    assert client.patch(f"/api/v1/admin/scenarios/{old.id}", headers=admin,
                        json={"terms_zh": "凭码办理"}).status_code == 200
    again = client.patch(f"/api/v1/admin/scenarios/{old.id}", headers=admin, json={"valid_until": "2099-12-31"})
    assert again.status_code == 422 and "required_grade" in again.json["error"]["details"]


def test_a_grade_is_checked_against_the_rules_in_force_on_the_scenarios_own_dates(client, session):
    tree = f.region_tree(session)
    partner, outlets, _desks = f.shop(session, tree.town_a)
    switch = local_date() + dt.timedelta(days=30)
    _publish_stars(session, tree, switch)  # published now, in force from `switch`
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)

    def create(grade: str, **dates) -> int:
        return client.post("/api/v1/admin/scenarios", headers=admin,
                           json=_privilege_body(partner, outlets, grade, **dates)).status_code

    before = {"valid_until": (switch - dt.timedelta(days=1)).isoformat()}
    assert create("AA", **before) == 201 and create("STAR2", **before) == 422  # over before the stars shine
    assert create("AA") == 201 and create("STAR2") == 201  # open-ended: both rule sets will be in force
    after = {"valid_from": switch.isoformat()}
    assert create("STAR2", **after) == 201 and create("AA", **after) == 422  # begins under the stars
    assert rules.grades_in_force(session, local_date(), None) == ["AAA", "AA", "A", "STAR3", "STAR2", "STAR1"]


def test_the_grade_check_reports_with_the_other_fields():
    s = Scenario(code="X2", family="casino", name_zh="x", name_en="x", partner_id=1, kind="privilege", points_cost=0,
                 required_grade="B", yuan_value_fen=0, valid_from=dt.date(2024, 1, 1))
    with pytest.raises(ValidationFailed) as err:
        catalogue.check(s, ["AAA", "AA", "A"])
    assert set(err.value.details) == {"family", "required_grade"}
    catalogue.check(Scenario(**{**{c: getattr(s, c) for c in ("code", "name_zh", "name_en", "partner_id", "kind",
                                                                   "points_cost", "yuan_value_fen", "valid_from")},
                                "family": "loans", "required_grade": "B"}), ["A", "B"])


def test_a_change_never_moves_a_scenarios_dates_into_the_past(client, session):
    """Regression: PATCH /admin/scenarios/{id} accepted an end in the past (valid_until: last week)
    and a new start for a scenario already running, so the scenario's record (and the audit's
    "after") said that the redemptions made since then were made outside its dates: a change
    rewrote past terms. Now an end may be today at the earliest (suspend stops one at once), a
    start changes only while the scenario has not begun, and never to a day gone."""
    tree = f.region_tree(session)
    partner, outlets, _desks = f.shop(session, tree.town_a)
    today = local_date()
    running = f.scenario(session, partner, outlets, valid_from=today - dt.timedelta(days=30))
    coming = f.scenario(session, partner, outlets, valid_from=today + dt.timedelta(days=10))
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)

    def patch(s, **body):
        return client.patch(f"/api/v1/admin/scenarios/{s.id}", headers=admin,
                            json={k: v.isoformat() for k, v in body.items()})

    for refused, field in ((patch(running, valid_until=today - dt.timedelta(days=7)), "valid_until"),
                           (patch(running, valid_from=today - dt.timedelta(days=60)), "valid_from"),
                           (patch(running, valid_from=today + dt.timedelta(days=1)), "valid_from"),
                           (patch(coming, valid_from=today - dt.timedelta(days=1)), "valid_from")):
        assert refused.status_code == 422, refused.json
        assert list(refused.json["error"]["details"]) == [field]
    session.refresh(running)
    assert running.valid_until is None and running.valid_from == today - dt.timedelta(days=30)
    assert patch(running, valid_until=today).status_code == 200  # ends tonight
    assert patch(coming, valid_from=today + dt.timedelta(days=20)).status_code == 200
    assert patch(coming, valid_from=today).status_code == 200
    # The same dates sent back unchanged (a form saving every field) are no change.
    assert patch(running, valid_from=today - dt.timedelta(days=30), valid_until=today).status_code == 200
    ended = f.scenario(session, partner, outlets, valid_until=today - dt.timedelta(days=3))
    assert patch(ended, valid_until=today - dt.timedelta(days=3)).status_code == 200


def test_the_catalogue_says_where_each_scenario_is_honoured(client, session):
    """A participant choosing a scenario learns where to go: the open outlets that honour it, with
    their addresses; a suspended outlet is not among them, nor any of a suspended partner's."""
    tree = f.region_tree(session)
    partner, outlets, _desks = f.shop(session, tree.town_a, outlets=2)
    outlets[0].address = "城关镇解放路 12 号"
    rice = f.scenario(session, partner, outlets)
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)

    def places() -> list[dict]:
        listed = client.get("/api/v1/scenarios", query_string={"partner_id": partner.id}).json
        return next(s for s in listed if s["id"] == rice.id)["places"]

    assert places() == [{"id": outlets[0].id, "name": outlets[0].name, "address": "城关镇解放路 12 号"},
                        {"id": outlets[1].id, "name": outlets[1].name, "address": None}]
    assert client.post(f"/api/v1/admin/outlets/{outlets[1].id}/suspend", headers=admin).status_code == 200
    assert [p["id"] for p in places()] == [outlets[0].id]
    assert client.post(f"/api/v1/admin/partners/{partner.id}/suspend", headers=admin).status_code == 200
    assert places() == []


def test_a_quota_lowered_while_a_counter_takes_a_unit_names_total_quota(committed_factory):
    """An admin lowering a quota while a counter was taking a unit got a bare 409 'conflict' from
    the database's CHECK; the change now waits for the counter and says what the quota must be."""
    from infra.errors import ValidationFailed
    from redemption.services import limits
    from tests.concurrency import while_holding

    with committed_factory() as setup:
        tree = f.region_tree(setup)
        person = f.participant(setup, tree.grid_a)
        partner, outlets, _desks = f.shop(setup, tree.town_a, outlets=1)
        rice = f.scenario(setup, partner, outlets, total_quota=2, quota_used=1)
        admin = f.staff(setup, "admin", tree.county)
        setup.commit()
        ids = (person.id, rice.id)

    def counter_takes_a_unit(s):
        limits.take(s, ids[0], s.get(Scenario, ids[1]), dt.date.today())

    def admin_lowers_the_quota(s):
        return catalogue.update(s, admin, ids[1], {"total_quota": 1})

    _taken, outcome = while_holding(committed_factory, counter_takes_a_unit, admin_lowers_the_quota, hold=0.5)
    assert isinstance(outcome, ValidationFailed) and "total_quota" in outcome.details, outcome
    with committed_factory() as check:
        assert check.get(Scenario, ids[1]).total_quota == 2
