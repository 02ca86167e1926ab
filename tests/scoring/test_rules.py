"""Rules as versioned data: validated, published, frozen; the version in force on the day scores."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from identity.models import AuditEntry
from infra.clock import local_date
from infra.errors import Conflict, Forbidden, ValidationFailed
from ledger.services import accounts
from scoring.services import awards, rules, workflow
from tests import factories as f


def _indicators(rule_set):
    return [{"class": i.class_, **{k: getattr(i, k) for k in rules.INDICATOR_FIELDS if k != "class_"}}
            for i in rule_set.indicators]


def test_the_starting_set_has_twelve_indicators_in_three_classes(session):
    current = rules.in_force(session, local_date())
    assert len(current.indicators) == 12
    assert {i.class_ for i in current.indicators} == {"information", "mediation", "promotion"}
    assert [g["code"] for g in current.grades] == ["AAA", "AA", "A"]
    assert rules.validate(current) == []


def test_validation_names_the_indicator_and_the_field(session):
    admin = f.staff(session, "admin", f.region_tree(session).county)
    draft = rules.draft_from(session, admin, 1)
    broken = _indicators(draft)
    broken[0]["multipliers"] = {"red": 5}
    broken[4]["base_points"] = -1
    broken[7]["unit"] = "fortnight"
    broken.append(dict(broken[1]))
    with pytest.raises(ValidationFailed) as err:
        rules.update_draft(session, admin, draft.version, {"indicators": broken})
    assert {"INF-1.multipliers", "MED-1.base_points", "MED-4.unit", "INF-2.code"} <= set(err.value.details)
    assert rules.validate(draft) == []  # nothing of the bad edit was kept


def test_a_warning_colour_factor_is_at_most_ten(session):
    """A factor beyond the table's would let base x quantity x factor outgrow the points columns."""
    admin = f.staff(session, "admin", f.region_tree(session).county)
    draft = rules.draft_from(session, admin, 1)
    steep = _indicators(draft)
    steep[0]["multipliers"] = {"blue": 1, "yellow": 2, "orange": 3, "red": 11}
    with pytest.raises(ValidationFailed) as err:
        rules.update_draft(session, admin, draft.version, {"indicators": steep})
    assert "INF-1.multipliers" in err.value.details and "10" in str(err.value.details["INF-1.multipliers"])
    steep[0]["multipliers"]["red"] = 10
    rules.update_draft(session, admin, draft.version, {"indicators": steep})
    assert rules.validate(draft) == []


def test_a_published_version_never_changes(session):
    admin = f.staff(session, "admin", f.region_tree(session).county)
    with pytest.raises(Conflict):
        rules.update_draft(session, admin, 1, {"notice_days": 0})
    for sql in ("UPDATE rule_sets SET notice_days = 0 WHERE version = 1",
                "UPDATE indicators SET base_points = 99 WHERE rule_set_id = (SELECT id FROM rule_sets WHERE version = 1)",
                "DELETE FROM indicators WHERE rule_set_id = (SELECT id FROM rule_sets WHERE version = 1)"):
        with pytest.raises(DBAPIError, match="frozen"):
            with session.begin_nested():
                session.execute(text(sql))


def test_only_admins_edit_rules(session):
    clerk = f.staff(session, "clerk", f.region_tree(session).county)
    with pytest.raises(Forbidden):
        rules.draft_from(session, clerk, 1)


def test_new_version_must_start_after_the_current(session):
    admin = f.staff(session, "admin", f.region_tree(session).county)
    draft = rules.draft_from(session, admin, 1)
    rules.update_draft(session, admin, draft.version, {"effective_from": dt.date(2023, 1, 1)})
    with pytest.raises(ValidationFailed) as err:
        rules.publish(session, admin, draft.version)
    assert "effective_from" in err.value.details


def test_work_before_the_first_version_has_no_rules(session):
    with pytest.raises(ValidationFailed) as err:
        rules.in_force(session, dt.date(2020, 5, 1))
    assert "work_date" in err.value.details


def _today() -> str:
    """The county's today: new rules may take effect from it, not from an earlier UTC date."""
    return local_date().isoformat()


def test_new_rules_take_effect_from_the_countys_today(client, session, county_clock):
    """At 01:30 on 11 March in Shanghai it is still 10 March in UTC. A draft starts on the county's
    11th, cannot take effect on the 10th (already past here), and once published for the 11th it
    is the set in force that everyone is shown."""
    county_clock(dt.datetime(2026, 3, 10, 17, 30, tzinfo=dt.timezone.utc))
    admin = f.staff(session, "admin", f.region_tree(session).county)
    draft = rules.draft_from(session, admin, 1)
    assert draft.effective_from == dt.date(2026, 3, 11)
    rules.update_draft(session, admin, draft.version, {"effective_from": dt.date(2026, 3, 10)})
    with pytest.raises(ValidationFailed) as err:
        rules.publish(session, admin, draft.version)
    assert "effective_from" in err.value.details
    rules.update_draft(session, admin, draft.version, {"effective_from": dt.date(2026, 3, 11)})
    rules.publish(session, admin, draft.version)
    assert client.get("/api/v1/reference/rules").json["version"] == draft.version


def test_only_county_admins_draft_edit_and_publish_the_rules(client, session):
    """The rule set scores the whole county: a township admin is refused every change, and the
    county admin's changes are audited in the county, where the county's auditor reads them."""
    tree = f.region_tree(session)
    county = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    township = f.bearer(session, "staff", f.staff(session, "admin", tree.town_a).id)
    refused = client.post("/api/v1/admin/rules", headers=township, json={"from_version": 1})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "scope_required"
    version = client.post("/api/v1/admin/rules", headers=county, json={"from_version": 1}).json["version"]
    for method, url, body in (("patch", f"/api/v1/admin/rules/{version}", {"notice_days": 0}),
                              ("post", f"/api/v1/admin/rules/{version}/publish", None)):
        response = getattr(client, method)(url, headers=township, json=body)
        assert response.status_code == 403 and response.json["error"]["code"] == "scope_required", url
    assert client.get(f"/api/v1/admin/rules/{version}", headers=county).json["notice_days"] != 0
    assert client.patch(f"/api/v1/admin/rules/{version}", headers=county,
                        json={"notice_days": 0, "effective_from": _today()}).status_code == 200
    assert client.post(f"/api/v1/admin/rules/{version}/publish", headers=county).status_code == 200
    entries = session.execute(select(AuditEntry.action, AuditEntry.region_path).where(
        AuditEntry.object_type == "rule_set", AuditEntry.object_id == str(version))).all()
    assert sorted(entries) == [("rules.draft", tree.county.path), ("rules.edit", tree.county.path),
                               ("rules.publish", tree.county.path)]
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.county).id)
    log = client.get("/api/v1/admin/audit", headers=auditor,
                     query_string={"object_type": "rule_set", "object_id": str(version)}).json
    assert sorted(e["action"] for e in log["items"]) == ["rules.draft", "rules.edit", "rules.publish"]


def test_indicators_edited_through_the_api_score_new_work_only(client, session):
    """Regression: sending back what GET returned was refused on every indicator's `class`."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    clerk = f.staff(session, "clerk", tree.town_a)
    verifier = f.staff(session, "verifier", tree.town_a)
    past = f.contribution(session, clerk, person, "PRO-1", work_date=local_date() - dt.timedelta(days=3))
    workflow.verify_many(session, verifier, [past.id])
    awards.award_due(session, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30), shards=f.SHARDS)
    assert past.state == "awarded" and past.proposed_points == 4
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    version = client.post("/api/v1/admin/rules", headers=admin, json={"from_version": 1}).json["version"]
    shown = client.get(f"/api/v1/admin/rules/{version}", headers=admin).json
    same = client.patch(f"/api/v1/admin/rules/{version}", headers=admin, json={
        "indicators": shown["indicators"], "grades": shown["grades"], "honours": shown["honours"]})
    assert same.status_code == 200, same.json
    assert same.json["indicators"] == shown["indicators"] and same.json["honours"] == shown["honours"]
    indicators = [{**i, "base_points": 8} if i["code"] == "PRO-1" else i for i in shown["indicators"]]
    edited = client.patch(f"/api/v1/admin/rules/{version}", headers=admin,
                          json={"indicators": indicators, "effective_from": _today()})
    assert edited.status_code == 200, edited.json
    assert next(i for i in edited.json["indicators"] if i["code"] == "PRO-1")["base_points"] == 8
    assert client.post(f"/api/v1/admin/rules/{version}/validate", headers=admin).json == {"valid": True, "problems": []}
    assert client.post(f"/api/v1/admin/rules/{version}/publish", headers=admin).status_code == 200
    newer = f.contribution(session, clerk, person, "PRO-1", work_date=local_date())
    workflow.verify_many(session, verifier, [newer.id])
    assert newer.proposed_points == 8 and newer.explanation["rule_version"] == version
    session.refresh(past)
    assert past.proposed_points == 4 and accounts.balance(session, f.account_of(session, person).id) == 4


def test_honours_are_typed_and_checked_against_the_grades(client, session):
    """Regression: an honour set to a bare number was published, and the candidates list then
    failed with a 500."""
    tree = f.region_tree(session)
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    version = client.post("/api/v1/admin/rules", headers=admin, json={"from_version": 1}).json["version"]
    honours = client.get(f"/api/v1/admin/rules/{version}", headers=admin).json["honours"]
    url = f"/api/v1/admin/rules/{version}"
    number = client.patch(url, headers=admin, json={"honours": {**honours, "loan_priority": 5}})
    assert number.status_code == 422 and "honours" in number.json["error"]["details"]
    negative = client.patch(url, headers=admin, json={"honours": {
        **honours, "loan_priority": {**honours["loan_priority"], "min_points": -1}}})
    assert negative.status_code == 422 and "honours" in negative.json["error"]["details"]
    unknown_grade = client.patch(url, headers=admin, json={"honours": {
        **honours, "loan_priority": {**honours["loan_priority"], "min_grade": "AAAA"}}})
    assert unknown_grade.status_code == 422 and unknown_grade.json["error"]["code"] == "rules_invalid"
    assert set(unknown_grade.json["error"]["details"]) == {"honours.loan_priority.min_grade"}
    grades_gone = client.patch(url, headers=admin, json={"grades": [{"code": "A", "min_points": 50}]})
    assert set(grades_gone.json["error"]["details"]) == {"honours.most_beautiful_family.min_grade",
                                                          "honours.loan_priority.min_grade"}
    assert client.get(url, headers=admin).json["honours"] == honours  # nothing of the bad edits was kept
    lower = {**honours, "loan_priority": {**honours["loan_priority"], "min_points": 0, "min_grade": None}}
    ok = client.patch(url, headers=admin, json={"honours": lower, "effective_from": _today()})
    assert ok.status_code == 200 and ok.json["honours"]["loan_priority"]["min_points"] == 0
    assert client.post(f"{url}/publish", headers=admin).status_code == 200
    candidates = client.get("/api/v1/admin/honours/candidates", headers=admin, query_string={
        "township_id": tree.town_a.id, "year": local_date().year, "honour": "loan_priority"})
    assert candidates.status_code == 200


def test_validation_names_bad_honours_stored_by_any_path(session):
    admin = f.staff(session, "admin", f.region_tree(session).county)
    draft = rules.draft_from(session, admin, 1)
    draft.honours = {"loan_priority": 5, "best_neighbour": {}}
    problems = {f"{p['indicator']}.{p['field']}" for p in rules.validate(draft)}
    assert problems == {"honours.loan_priority", "honours.most_beautiful_family", "honours.best_neighbour"}
    with pytest.raises(ValidationFailed) as err:
        rules.publish(session, admin, draft.version)
    assert "honours.loan_priority" in err.value.details


def test_a_grade_code_is_given_once(client, session):
    """Regression: two grades named AA (at 300 and at 150) were accepted, so an honour or a
    privilege requiring AA meant 300 points here and 150 in a participant's grade."""
    admin = f.bearer(session, "staff", f.staff(session, "admin", f.region_tree(session).county).id)
    version = client.post("/api/v1/admin/rules", headers=admin, json={"from_version": 1}).json["version"]
    url = f"/api/v1/admin/rules/{version}"
    twice = client.patch(url, headers=admin, json={"grades": [
        {"code": "AA", "min_points": 300}, {"code": "AA", "min_points": 150}, {"code": "A", "min_points": 50}]})
    assert twice.status_code == 422 and twice.json["error"]["code"] == "rules_invalid", twice.json
    assert set(twice.json["error"]["details"]) == {"grade AA.code"}
    assert [g["code"] for g in client.get(url, headers=admin).json["grades"]] == ["AAA", "AA", "A"]


def test_a_draft_from_a_version_that_does_not_exist_names_from_version(client, session):
    """Regression: POST /admin/rules {"from_version": 999} was a 404 naming `version`, a field the
    body does not have; now it names from_version (the path's version still names version)."""
    tree = f.region_tree(session)
    county = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    missing = client.post("/api/v1/admin/rules", headers=county, json={"from_version": 999})
    assert missing.status_code == 404 and set(missing.json["error"]["details"]) == {"from_version"}
    in_path = client.get("/api/v1/admin/rules/999", headers=county)
    assert in_path.status_code == 404 and set(in_path.json["error"]["details"]) == {"version"}


def test_a_far_effective_date_is_refused_so_the_rules_can_still_change(client, session):
    """Regression: a draft dated 9999-12-31 could be saved and published, after which every draft
    copied that date and any other was refused ("Later than 9999-12-31"): the county could never
    change its rules again. A date more than RULES_MAX_LEAD_DAYS (365) after today is a 422 naming
    `effective_from`, on edit and on publish."""
    tree = f.region_tree(session)
    county = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    version = client.post("/api/v1/admin/rules", headers=county, json={"from_version": 1}).json["version"]
    last = local_date() + dt.timedelta(days=365)
    for day in ("9999-12-31", (last + dt.timedelta(days=1)).isoformat()):
        refused = client.patch(f"/api/v1/admin/rules/{version}", headers=county, json={"effective_from": day})
        assert refused.status_code == 422 and refused.json["error"]["code"] == "rules_invalid"
        assert refused.json["error"]["details"] == {"effective_from": [f"最晚为 {last}。"]}
    assert client.get(f"/api/v1/admin/rules/{version}", headers=county).json["effective_from"] == _today()
    edited = client.patch(f"/api/v1/admin/rules/{version}", headers=county, json={"effective_from": last.isoformat()})
    assert edited.status_code == 200 and edited.json["effective_from"] == last.isoformat()


def test_publishing_holds_a_draft_saved_earlier_to_the_bound(client, session, app, monkeypatch):
    """A draft saved far ahead before the bound existed, or before it was lowered, is refused at
    publish, naming `effective_from`; the bound is the setting's."""
    tree = f.region_tree(session)
    admin = f.staff(session, "admin", tree.county)
    county = f.bearer(session, "staff", admin.id)
    draft = rules.draft_from(session, admin, 1)
    draft.effective_from = dt.date(9999, 12, 31)  # as an edit before this fix left it
    session.flush()
    refused = client.post(f"/api/v1/admin/rules/{draft.version}/publish", headers={**county, "Accept-Language": "en"})
    assert refused.status_code == 422 and set(refused.json["error"]["details"]) == {"effective_from"}
    assert refused.json["error"]["message"] == "New rules take effect within 365 days of today."
    monkeypatch.setattr(app.config["SETTINGS"], "rules_max_lead_days", 30)
    month = local_date() + dt.timedelta(days=30)
    assert client.patch(f"/api/v1/admin/rules/{draft.version}", headers=county,
                        json={"effective_from": (month + dt.timedelta(days=1)).isoformat()}).status_code == 422
    assert client.patch(f"/api/v1/admin/rules/{draft.version}", headers=county,
                        json={"effective_from": month.isoformat()}).status_code == 200
    published = client.post(f"/api/v1/admin/rules/{draft.version}/publish", headers=county)
    assert published.status_code == 200 and published.json["effective_from"] == month.isoformat()


def test_a_draft_takes_effect_on_the_first_day_it_could_be_published(client, session):
    """A draft copied from a version published to take effect later used to copy its date, which
    publishing then refused ("Later than ..."): now it starts the day after the latest version
    published (today, if that one is already in force), and publishes as drafted."""
    tree = f.region_tree(session)
    county = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    assert client.post("/api/v1/admin/rules", headers=county, json={"from_version": 1}).json["effective_from"] \
        == _today()
    soon = local_date() + dt.timedelta(days=10)
    upcoming = client.post("/api/v1/admin/rules", headers=county, json={"from_version": 1}).json["version"]
    client.patch(f"/api/v1/admin/rules/{upcoming}", headers=county, json={"effective_from": soon.isoformat()})
    assert client.post(f"/api/v1/admin/rules/{upcoming}/publish", headers=county).status_code == 200
    for base in (upcoming, 1):
        drafted = client.post("/api/v1/admin/rules", headers=county, json={"from_version": base})
        assert drafted.json["effective_from"] == (soon + dt.timedelta(days=1)).isoformat()
    published = client.post(f"/api/v1/admin/rules/{drafted.json['version']}/publish", headers=county)
    assert published.status_code == 200, published.json
