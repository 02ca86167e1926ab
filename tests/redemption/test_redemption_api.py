"""Redemption over HTTP: participants' codes, outlets' keys, staff settlement."""
from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy import select

from identity import services as identity
from identity.models import AuditEntry
from redemption.models import ScenarioOutlet
from redemption.services import catalogue
from tests import factories as f


def _setup(session, app):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="李桂兰")
    f.award(session, f.account_of(session, person).id, 80)
    partner, outlets, _desks = f.shop(session, tree.town_a)
    rice = f.scenario(session, partner, outlets, points_cost=30, yuan_value_fen=2800)
    admin = f.staff(session, "admin", tree.county)
    keys = [identity.issue_api_key(session, admin, o.id)[0] for o in outlets]
    return tree, person, partner, rice, [{"X-Api-Key": k} for k in keys], admin


def _code(client, session, person) -> str:
    response = client.post("/api/v1/me/codes", headers=f.bearer(session, "participant", person.id))
    assert response.status_code == 201
    return response.json["code"]


def test_code_qr_lookup_redeem_over_http(app, client, session):
    _tree, person, _p, rice, (desk, _other), _admin = _setup(session, app)
    me = f.bearer(session, "participant", person.id)
    issued = client.post("/api/v1/me/codes", headers=me).json
    assert len(issued["code"]) == 8 and issued["code"].isdigit()
    assert "<svg" in issued["qr_svg"]
    looked = client.post("/api/v1/outlet/lookup", headers=desk, json={"code": issued["code"]}).json
    assert looked["masked_name"] == "李*兰" and "李桂兰" not in str(looked)
    assert [s["eligible"] for s in looked["scenarios"]] == [True]
    body = {"code": issued["code"], "scenario_id": rice.id, "idempotency_key": "pos-000001"}
    first = client.post("/api/v1/outlet/redemptions", headers=desk, json=body)
    assert first.status_code == 201 and first.json["points"] == 30 and first.json["yuan_value"] == "28.00"
    retry = client.post("/api/v1/outlet/redemptions", headers=desk, json=body)
    assert retry.status_code == 200 and retry.json["id"] == first.json["id"]
    assert client.get("/api/v1/me/balance", headers=me).json["balance"] == 50
    mine = client.get("/api/v1/me/redemptions", headers=me).json
    assert [r["id"] for r in mine] == [first.json["id"]]


def test_second_outlets_key_gets_404_on_the_firsts_redemptions(app, client, session):
    tree, person, _p, rice, (desk, _sibling), admin = _setup(session, app)
    other_partner, other_outlets, _ = f.shop(session, tree.town_a, outlets=1)
    stranger = {"X-Api-Key": identity.issue_api_key(session, admin, other_outlets[0].id)[0]}
    done = client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": _code(client, session, person), "scenario_id": rice.id, "idempotency_key": "pos-000002"}).json
    refund = client.post(f"/api/v1/outlet/redemptions/{done['id']}/refunds", headers=stranger,
                         json={"reason": "不是我的", "idempotency_key": "ref-000002"})
    assert refund.status_code == 404 and refund.json["error"]["code"] == "not_found"
    redeem = client.post("/api/v1/outlet/redemptions", headers=stranger, json={
        "code": _code(client, session, person), "scenario_id": rice.id, "idempotency_key": "pos-000003"})
    assert redeem.status_code == 404


def test_code_guessing_is_rate_limited(app, client, session):
    _tree, _person, _p, _rice, (desk, _), _admin = _setup(session, app)
    app.config["SETTINGS"].code_rate_limit = "1000 per minute"
    app.config["SETTINGS"].lookup_rate_limit = "5 per minute"
    try:
        statuses = [client.post("/api/v1/outlet/lookup", headers=desk, json={"code": f"{n:08d}"}).status_code
                    for n in range(7)]
        assert statuses == [404] * 5 + [429] * 2
        app.config["SETTINGS"].lookup_rate_limit = "1000 per minute"
        app.config["SETTINGS"].code_rate_limit = "3 per minute"
        same = [client.post("/api/v1/outlet/lookup", headers=desk, json={"code": "12345678"}).status_code
                for _ in range(4)]
        assert same == [404, 404, 404, 429]
    finally:
        app.config["SETTINGS"].code_rate_limit = "5 per minute"
        app.config["SETTINGS"].lookup_rate_limit = "60 per minute"


def test_counter_errors_are_4xx_with_field_details(app, client, session):
    _tree, person, _p, rice, (desk, _), _admin = _setup(session, app)
    bad = client.post("/api/v1/outlet/redemptions", headers=desk, json={"code": "12ab", "scenario_id": 0, "tip": 1})
    assert bad.status_code == 422
    assert set(bad.json["error"]["details"]) == {"code", "scenario_id", "idempotency_key", "tip"}
    no_key = client.post("/api/v1/outlet/lookup", json={"code": "12345678"})
    assert no_key.status_code == 401
    as_person = client.post("/api/v1/outlet/lookup", headers=f.bearer(session, "participant", person.id),
                            json={"code": "12345678"})
    assert as_person.status_code == 403


def test_eligibility_lists_every_scenario_with_reasons(app, client, session):
    _tree, person, partner, rice, _desks, _admin = _setup(session, app)
    outlets = [o for o in partner.outlets]
    f.scenario(session, partner, outlets, kind="privilege", points_cost=0, required_grade="AAA", name_zh="贷款利率优惠")
    f.scenario(session, partner, outlets, points_cost=10, valid_until=dt.date(2025, 2, 28), name_zh="春节特惠")
    rows = client.get("/api/v1/me/eligibility", headers=f.bearer(session, "participant", person.id),
                      environ_base={"HTTP_ACCEPT_LANGUAGE": "en"}).json
    mine = {r["scenario"]["name_zh"]: r for r in rows if r["scenario"]["partner_id"] == partner.id}
    assert mine["积分换购大米"]["eligible"] is True
    assert mine["贷款利率优惠"]["reasons"][0]["code"] == "grade_required"
    ended = mine["春节特惠"]["reasons"][0]
    assert (ended["code"], ended["message"]) == ("ended", "Has ended")


def test_settlement_reconciles_and_exports(app, client, session):
    tree, person, partner, rice, (desk, _), _admin = _setup(session, app)
    done = client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": _code(client, session, person), "scenario_id": rice.id, "idempotency_key": "pos-000010"}).json
    client.post(f"/api/v1/outlet/redemptions/{done['id']}/refunds", headers=desk,
                json={"points": 10, "reason": "少给", "idempotency_key": "ref-000010"})
    month = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.county).id)
    report = client.get("/api/v1/admin/settlement", headers=auditor,
                        query_string={"partner_id": partner.id, "month": month}).json
    assert (report["redeemed_points"], report["refunded_points"], report["net_points"]) == (30, 10, 20)
    assert report["net_yuan"] == "18.67" and report["reconciled"] is True
    assert [line["participant"] for line in report["lines"]] == ["李*兰", "李*兰"]
    own = client.get("/api/v1/outlet/redemptions/month", headers=desk, query_string={"month": month}).json
    assert own["net_points"] == 20
    xlsx = client.get("/api/v1/admin/settlement", headers=auditor,
                      query_string={"partner_id": partner.id, "month": month, "format": "xlsx"})
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    assert sheet["H4"].value == sheet["H6"].value == 20 and sheet["H7"].value == "是 yes"  # spend, total
    csv_text = client.get("/api/v1/admin/settlement", headers=auditor, query_string={
        "partner_id": partner.id, "month": month, "format": "csv"}).data.decode("utf-8-sig")
    assert "李*兰" in csv_text and person.phone not in csv_text


def test_scenario_management_is_audited_and_scoped(app, client, session):
    tree, _person, partner, rice, _desks, admin = _setup(session, app)
    headers = f.bearer(session, "staff", admin.id)
    changed = client.patch(f"/api/v1/admin/scenarios/{rice.id}", headers=headers, json={"points_cost": 35})
    assert changed.status_code == 200 and changed.json["points_cost"] == 35
    suspended = client.post(f"/api/v1/admin/scenarios/{rice.id}/suspend", headers=headers)
    assert suspended.json["status"] == "suspended"
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == str(rice.id),
                                                             AuditEntry.object_type == "scenario")).all()
    assert actions == ["scenario.update", "scenario.suspend"]
    township_admin = f.bearer(session, "staff", f.staff(session, "admin", tree.town_b).id)
    assert client.patch(f"/api/v1/admin/scenarios/{rice.id}", headers=township_admin,
                        json={"points_cost": 1}).status_code == 404
    invalid = client.patch(f"/api/v1/admin/scenarios/{rice.id}", headers=headers, json={"points_cost": 0})
    assert invalid.status_code == 422 and "points_cost" in invalid.json["error"]["details"]


def test_the_counter_never_sees_the_balance(app, client, session):
    tree, person, partner, rice, (desk, _), _admin = _setup(session, app)
    gift = f.scenario(session, partner, list(partner.outlets), points_cost=500, name_zh="电饭煲")
    looked = client.post("/api/v1/outlet/lookup", headers=desk, json={"code": _code(client, session, person)}).json
    reason = next(s for s in looked["scenarios"] if s["scenario"]["id"] == gift.id)["reasons"][0]
    assert reason["code"] == "insufficient_points" and reason["have"] is None
    refused = client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": _code(client, session, person), "scenario_id": gift.id, "idempotency_key": "pos-000020"})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "insufficient_points"
    assert "80" not in refused.get_data(as_text=True)


def test_guesses_share_one_budget_across_lookup_redeem_and_hold(app, client, session):
    _tree, _person, _p, rice, (desk, _), _admin = _setup(session, app)
    app.config["SETTINGS"].code_failure_limit = "3 per minute"
    try:
        codes = iter(f"{n:08d}" for n in range(100))
        answers = [client.post("/api/v1/outlet/lookup", headers=desk, json={"code": next(codes)}).status_code,
                   client.post("/api/v1/outlet/redemptions", headers=desk, json={
                       "code": next(codes), "scenario_id": rice.id, "idempotency_key": "guess-0001"}).status_code,
                   client.post("/api/v1/outlet/holds", headers=desk, json={
                       "code": next(codes), "scenario_id": rice.id, "idempotency_key": "guess-0002"}).status_code,
                   client.post("/api/v1/outlet/redemptions", headers=desk, json={
                       "code": next(codes), "scenario_id": rice.id, "idempotency_key": "guess-0003"}).status_code]
        assert answers == [404, 404, 404, 429]
    finally:
        app.config["SETTINGS"].code_failure_limit = "10 per 10 minutes"


def test_an_outlet_month_report_shows_only_its_own_counter(app, client, session):
    _tree, person, partner, rice, (desk, sibling), _admin = _setup(session, app)
    client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": _code(client, session, person), "scenario_id": rice.id, "idempotency_key": "pos-000030"})
    month = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    theirs = client.get("/api/v1/outlet/redemptions/month", headers=sibling, query_string={"month": month}).json
    assert theirs["lines"] == [] and theirs["net_points"] == 0


def test_exports_neutralise_formulas(app, client, session):
    tree, person, partner, rice, (desk, _), admin = _setup(session, app)
    from identity import services as identity_services

    outlet = identity_services.create_outlet(session, partner, name="=HYPERLINK(\"http://x\",\"点我\")",
                                             region=tree.town_a)
    evil = {"X-Api-Key": identity.issue_api_key(session, admin, outlet.id)[0]}
    rice_outlets = f.scenario(session, partner, [outlet], points_cost=5)
    client.post("/api/v1/outlet/redemptions", headers=evil, json={
        "code": _code(client, session, person), "scenario_id": rice_outlets.id, "idempotency_key": "pos-000040"})
    month = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.county).id)
    body = client.get("/api/v1/admin/settlement", headers=auditor, query_string={
        "partner_id": partner.id, "month": month, "format": "csv"}).data.decode("utf-8-sig")
    assert "'=HYPERLINK" in body and ",=HYPERLINK" not in body


def test_a_refused_guess_says_when_to_come_back_and_budgets_are_per_outlet(app, client, session):
    _tree, _person, _p, rice, (desk, sibling), _admin = _setup(session, app)
    app.config["SETTINGS"].code_failure_limit = "2 per 10 minutes"
    try:
        answers = [client.post("/api/v1/outlet/redemptions", headers=desk, json={
            "code": f"{n:08d}", "scenario_id": rice.id, "idempotency_key": f"guess-{n:04d}"}) for n in range(3)]
        assert [a.status_code for a in answers] == [404, 404, 429]
        refused = answers[-1]
        assert refused.json["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) == 600
        assert "Retry-After" not in answers[0].headers  # only a refusal carries it
        other = client.post("/api/v1/outlet/lookup", headers=sibling, json={"code": "00000009"})
        assert other.status_code == 404  # another outlet's key has its own budget
        nobody = client.post("/api/v1/outlet/lookup", json={"code": "00000010"})
        assert nobody.status_code == 401  # no key: counted by address, refused by the view
    finally:
        app.config["SETTINGS"].code_failure_limit = "10 per 10 minutes"


def test_a_key_revoked_after_use_is_refused_at_once(app, client, session):
    """The redeem view takes a key it has seen valid from memory and leaves the check to the
    redeem statement: a revoked key, or a suspended outlet, must still be refused right away."""
    _tree, person, _p, rice, (desk, other), admin = _setup(session, app)
    first = client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": _code(client, session, person), "scenario_id": rice.id, "idempotency_key": "pos-000101"})
    assert first.status_code == 201  # the key is known to this process now
    key_id = identity.principal_for(session, "apikey", desk["X-Api-Key"]).extra["api_key_id"]
    identity.revoke_api_key(session, admin, key_id)
    code = _code(client, session, person)
    refused = client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": code, "scenario_id": rice.id, "idempotency_key": "pos-000102"})
    assert refused.status_code == 401 and refused.json["error"]["code"] == "unauthorized"
    again = client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": code, "scenario_id": rice.id, "idempotency_key": "pos-000103"})
    assert again.status_code == 401  # resolved afresh, and still refused
    assert client.post("/api/v1/outlet/redemptions", headers=other, json={
        "code": code, "scenario_id": rice.id, "idempotency_key": "pos-000104"}).status_code == 201  # code unspent
    me = f.bearer(session, "participant", person.id)
    assert client.get("/api/v1/me/balance", headers=me).json["balance"] == 20


def test_a_revoked_key_that_fails_before_any_check_is_not_kept(app, client, session):
    """A key from memory whose request fails before the redeem statement checks it (a bad body, a
    rate limit) is forgotten: its next request is checked in full, refused and counted as a
    stranger's, not against its outlet's budget."""
    _tree, person, _p, rice, (desk, _other), admin = _setup(session, app)
    assert client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": _code(client, session, person), "scenario_id": rice.id,
        "idempotency_key": "pos-000201"}).status_code == 201
    key_id = identity.principal_for(session, "apikey", desk["X-Api-Key"]).extra["api_key_id"]
    identity.revoke_api_key(session, admin, key_id)
    bad = client.post("/api/v1/outlet/redemptions", headers=desk, json={"code": "12", "scenario_id": rice.id})
    assert bad.status_code == 422  # refused before anything was checked
    again = client.post("/api/v1/outlet/redemptions", headers=desk, json={"code": "12", "scenario_id": rice.id})
    assert again.status_code == 401


def test_an_application_wide_limit_still_reaches_the_counter(app, client, session):
    """The counter's views count their own limits and Flask-Limiter passes over them, but only
    while it has no limits of its own for every view: an application-wide one still applies."""
    from flask_limiter import ApplicationLimit

    from infra.limits import limiter

    _tree, _person, _p, rice, (desk, _), _admin = _setup(session, app)
    manager = limiter.limit_manager
    saved = manager._application_limits
    manager.set_application_limits([ApplicationLimit("2 per minute").bind(limiter)])
    try:
        answers = [client.post("/api/v1/outlet/redemptions", headers=desk, json={
            "code": f"{n:08d}", "scenario_id": rice.id, "idempotency_key": f"wide-{n:04d}"}).status_code
            for n in range(3)]
    finally:
        manager.set_application_limits(saved)
        limiter.reset()
    assert answers == [404, 404, 429]


def test_a_body_that_is_not_json_is_refused_and_still_counted_per_code(app, client, session):
    _tree, _person, _p, rice, (desk, _), _admin = _setup(session, app)
    broken = client.post("/api/v1/outlet/redemptions", headers={**desk, "Content-Type": "application/json"},
                         data=b'{"code": "12345678", "scenario_id": ')
    assert broken.status_code == 400 and broken.json["error"]["code"] == "bad_request"
    app.config["SETTINGS"].code_rate_limit = "2 per minute"
    try:
        body = {"code": "87654321", "scenario_id": rice.id, "idempotency_key": "pos-guess-1"}
        tries = [client.post("/api/v1/outlet/redemptions", headers=desk, json=body).status_code for _ in range(3)]
        other = client.post("/api/v1/outlet/redemptions", headers=desk, json={**body, "code": "11112222"})
    finally:
        app.config["SETTINGS"].code_rate_limit = "5 per minute"
    assert tries == [404, 404, 429] and other.status_code == 404


def test_changing_a_scenarios_outlets_is_audited_where_the_partners_auditors_see_it(app, client, session):
    tree, _person, partner, rice, _desks, admin = _setup(session, app)
    first, second = sorted(o.id for o in partner.outlets)
    headers = f.bearer(session, "staff", admin.id)
    changed = client.patch(f"/api/v1/admin/scenarios/{rice.id}", headers=headers,
                           json={"outlet_ids": [second], "points_cost": 35})
    assert changed.status_code == 200
    client.post(f"/api/v1/admin/scenarios/{rice.id}/suspend", headers=headers)
    month = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    assert client.get("/api/v1/admin/settlement", headers=clerk,
                      query_string={"partner_id": partner.id, "month": month}).status_code == 200
    town_auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.town_a).id)
    log = client.get("/api/v1/admin/audit", headers=town_auditor,
                     query_string={"since": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)).isoformat()})
    mine = [e for e in log.json["items"] if e["action"].startswith(("scenario.", "settlement."))]
    assert [e["action"] for e in mine] == ["settlement.view", "scenario.suspend", "scenario.update"]
    update = mine[-1]["details"]
    assert update["before"] == {"outlet_ids": [first, second], "points_cost": "30"}
    assert update["after"] == {"outlet_ids": [second], "points_cost": "35"}
    other_auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.town_b).id)
    theirs = client.get("/api/v1/admin/audit", headers=other_auditor, query_string={"object_type": "scenario"}).json
    assert rice.id not in [int(e["object_id"]) for e in theirs["items"]]


def _outlets_of(session, scenario) -> list[int]:
    return sorted(session.scalars(select(ScenarioOutlet.outlet_id).where(ScenarioOutlet.scenario_id == scenario.id)))


def test_township_staff_change_only_the_outlets_in_their_township(app, client, session):
    """A township's partner with a branch in the next township: the branch is not the township
    staff's to add to or drop from a scenario; naming it is refused as if it did not exist."""
    tree = f.region_tree(session)
    partner, (here,), _desks = f.shop(session, tree.town_a, outlets=1)
    there = identity.create_outlet(session, partner, name="乙乡分店", region=tree.town_b)
    rice = f.scenario(session, partner, [here, there])
    town_admin = f.bearer(session, "staff", f.staff(session, "admin", tree.town_a).id)
    url = f"/api/v1/admin/scenarios/{rice.id}"
    unknown = client.patch(url, headers=town_admin, json={"outlet_ids": [there.id + 10**9]})
    beyond = client.patch(url, headers=town_admin, json={"outlet_ids": [there.id]})
    assert beyond.status_code == unknown.status_code == 422
    assert beyond.json["error"] == unknown.json["error"]
    assert client.patch(url, headers=town_admin, json={"outlet_ids": [here.id]}).status_code == 200
    assert _outlets_of(session, rice) == [here.id, there.id]  # the branch keeps it
    body = {"code": f.unique("S")[:16].upper(), "family": "shopping", "name_zh": "积分换油", "name_en": "Oil",
            "partner_id": partner.id, "kind": "spend", "points_cost": 10, "valid_from": "2025-01-01"}
    refused = client.post("/api/v1/admin/scenarios", headers=town_admin, json={**body, "outlet_ids": [here.id, there.id]})
    assert refused.status_code == 422 and "outlet_ids" in refused.json["error"]["details"]
    assert client.post("/api/v1/admin/scenarios", headers=town_admin,
                       json={**body, "outlet_ids": [here.id]}).status_code == 201
    county_admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    assert client.patch(url, headers=county_admin, json={"outlet_ids": [here.id]}).status_code == 200
    assert _outlets_of(session, rice) == [here.id]
    log = session.scalars(select(AuditEntry).where(AuditEntry.object_type == "scenario",
                                                   AuditEntry.object_id == str(rice.id)).order_by(AuditEntry.id)).all()
    assert [(e.details["before"]["outlet_ids"], e.details["after"]["outlet_ids"]) for e in log] == [
        ([here.id, there.id], [here.id, there.id]), ([here.id, there.id], [here.id])]


def test_a_refusal_tells_the_clerk_why_in_the_readers_language(app, client, session):
    """A suspended scenario is refused with its reason in words (Chinese by default, English on
    request), not only a code; every reason stays in the details."""
    tree, person, _p, rice, (desk, _), admin = _setup(session, app)
    catalogue.set_status(session, admin, rice.id, "suspended")
    body = {"code": _code(client, session, person), "scenario_id": rice.id, "idempotency_key": "pos-000090"}
    chinese = client.post("/api/v1/outlet/redemptions", headers=desk, json=body)
    assert chinese.status_code == 409 and chinese.json["error"]["code"] == "suspended"
    assert chinese.json["error"]["message"] == "该场景已暂停。"
    assert [r["code"] for r in chinese.json["error"]["details"]["reasons"]] == ["suspended"]
    english = client.post("/api/v1/outlet/redemptions", headers={**desk, "Accept-Language": "en"}, json=body)
    assert english.json["error"]["message"] == "This scenario is suspended."


def test_a_refund_needs_a_reason_in_words_not_blanks(app, client, session):
    """Regression: a refund's reason of two spaces went into the partner's settlement and the
    participant's statement as "退回：  "; now a 422 naming reason, and nothing is refunded."""
    _tree, person, _p, rice, (desk, _other), _admin = _setup(session, app)
    done = client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": _code(client, session, person), "scenario_id": rice.id, "idempotency_key": "pos-blank-1"}).json
    refund = client.post(f"/api/v1/outlet/redemptions/{done['id']}/refunds", headers=desk,
                         json={"reason": "\u3000 ", "idempotency_key": "ref-blank-1"})
    assert refund.status_code == 422 and set(refund.json["error"]["details"]) == {"reason"}
    assert client.get("/api/v1/me/balance", headers=f.bearer(session, "participant", person.id)).json["balance"] == 50


def test_the_longest_idempotency_key_allowed_redeems_holds_and_replays(app, client, session):
    """Regression: the counter prefixes the outlet's key ("<outlet>:redeem:<key>") for the ledger's
    posting, whose column holds 100 characters: a redemption, a hold, its capture or a refund with
    a key of 100, the most the API takes, was a 500. Now each is made, and a retry returns the first."""
    _tree, person, _partner, rice, (desk, _other), _admin = _setup(session, app)
    made = {}
    for path, key in (("/api/v1/outlet/redemptions", "r" * 100), ("/api/v1/outlet/holds", "h" * 100)):
        body = {"code": _code(client, session, person), "scenario_id": rice.id, "idempotency_key": key}
        first = client.post(path, headers=desk, json=body)
        assert first.status_code == 201, first.json
        retry = client.post(path, headers=desk, json=body)
        assert retry.status_code == 200 and retry.json["id"] == first.json["id"]
        made[path] = first.json["id"]
    for path, body in ((f"/api/v1/outlet/holds/{made['/api/v1/outlet/holds']}/capture", {}),
                       (f"/api/v1/outlet/redemptions/{made['/api/v1/outlet/redemptions']}/refunds",
                        {"reason": "退货退款"})):
        body = {**body, "idempotency_key": "c" * 100}
        first = client.post(path, headers=desk, json=body)
        assert first.status_code == 201, first.json
        retry = client.post(path, headers=desk, json=body)
        assert retry.status_code == 200 and retry.json["id"] == first.json["id"]
    assert client.get("/api/v1/me/balance", headers=f.bearer(session, "participant", person.id)).json["balance"] == 50


def test_a_refund_reason_the_request_accepts_is_not_refused_by_the_ledger(app, client, session):
    """Regression: the refund's posting reason is the scenario's name and code before the clerk's
    words; with a long name (up to 200) and a reason of 300 characters, both accepted, the ledger
    refused the posting: a 422 saying "at most 500 characters" about a reason of 300. Now the
    posting's reason is cut to the ledger's length and the refund keeps the words whole."""
    tree, person, partner, _rice, (desk, _other), _admin = _setup(session, app)
    long_named = f.scenario(session, partner, [o for o in partner.outlets], points_cost=30, yuan_value_fen=2800,
                            name_zh="米" * 200)
    sold = client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": _code(client, session, person), "scenario_id": long_named.id, "idempotency_key": "pos-longname"})
    assert sold.status_code == 201, sold.json
    refund = client.post(f"/api/v1/outlet/redemptions/{sold.json['id']}/refunds", headers=desk,
                         json={"reason": "退" * 300, "idempotency_key": "pos-longname-refund"})
    assert refund.status_code == 201, refund.json
    assert refund.json["reason"] == "退" * 300 and refund.json["points"] == 30


def test_a_code_that_cannot_be_used_is_a_404_naming_the_code_field(app, client, session):
    """Regression: a mistyped, expired or used code was a 404 with empty details, the one counter
    error that did not say which field was wrong. Now look-up, redeem and hold name `code`, with
    the same answer whatever the cause, so that a guess still learns nothing."""
    _tree, person, _p, rice, (desk, _other), _admin = _setup(session, app)
    used = _code(client, session, person)
    body = {"code": used, "scenario_id": rice.id, "idempotency_key": "pos-naming-1"}
    assert client.post("/api/v1/outlet/redemptions", headers=desk, json=body).status_code == 201
    answers = [
        client.post("/api/v1/outlet/lookup", headers=desk, json={"code": used}),
        client.post("/api/v1/outlet/redemptions", headers=desk, json={**body, "idempotency_key": "pos-naming-2"}),
        client.post("/api/v1/outlet/holds", headers=desk, json={**body, "idempotency_key": "pos-naming-3"}),
        client.post("/api/v1/outlet/lookup", headers=desk, json={"code": "00000000" if used != "00000000" else "00000001"}),
    ]
    assert [a.status_code for a in answers] == [404] * 4
    assert all(set(a.json["error"]["details"]) == {"code"} for a in answers), [a.json for a in answers]
    assert len({str(a.json) for a in answers}) == 1  # one answer whatever the cause



def test_a_scenario_out_of_scope_reads_exactly_as_a_missing_one(app, client, session):
    """Regression: township staff changing or suspending another township's scenario got "Partner
    not found" while a missing scenario was "Scenario not found", so the answer told that the
    scenario exists; now both are the same 404."""
    tree, _person, _partner, rice, _desks, _admin = _setup(session, app)
    township_admin = f.bearer(session, "staff", f.staff(session, "admin", tree.town_b).id)
    for path, method, body in (("", "patch", {"points_cost": 1}), ("/suspend", "post", None), ("/resume", "post", None)):
        answers = [getattr(client, method)(f"/api/v1/admin/scenarios/{sid}{path}", headers=township_admin, json=body)
                   for sid in (rice.id, 9_000_000_000)]
        assert [a.status_code for a in answers] == [404, 404], path
        assert answers[0].json == answers[1].json, path


def test_eligibility_says_when_a_scenario_begins_or_ended(app, client, session):
    """Regression: eligibility worked out the day a scenario begins (not_started) or its last day
    (ended), but the answer's schema dropped them, so a participant read "not started yet" with no
    date. Now each reason carries `from` or `until`, on the participant's list and at the counter."""
    _tree, person, partner, _rice, (desk, _other), _admin = _setup(session, app)
    outlets = list(partner.outlets)
    later = f.scenario(session, partner, outlets, points_cost=10, valid_from=dt.date(2099, 1, 1), name_zh="新年特惠")
    over = f.scenario(session, partner, outlets, points_cost=10, valid_until=dt.date(2025, 2, 28), name_zh="春节特惠")
    rows = client.get("/api/v1/me/eligibility", headers=f.bearer(session, "participant", person.id)).json
    reasons = {r["scenario"]["id"]: r["reasons"] for r in rows}
    assert (reasons[later.id][0]["code"], reasons[later.id][0]["from"]) == ("not_started", "2099-01-01")
    assert (reasons[over.id][0]["code"], reasons[over.id][0]["until"]) == ("ended", "2025-02-28")
    looked = client.post("/api/v1/outlet/lookup", headers=desk, json={"code": _code(client, session, person)}).json
    at_counter = {v["scenario"]["id"]: v["reasons"] for v in looked["scenarios"]}
    assert at_counter[later.id][0]["from"] == "2099-01-01" and at_counter[over.id][0]["until"] == "2025-02-28"


def test_fractions_of_points_are_refused_at_the_counter_not_cut_down(app, client, session):
    """Regression: a refund of 2.9 points was made as 2 (201) and a hold of 7.99 held 7: the
    counter's clerk typed one amount and the ledger recorded another. Now each is a 422 naming
    `points`, and nothing moves."""
    _tree, person, _p, rice, (desk, _other), _admin = _setup(session, app)
    me = f.bearer(session, "participant", person.id)
    done = client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": _code(client, session, person), "scenario_id": rice.id, "idempotency_key": "pos-frac-1"}).json
    refund = client.post(f"/api/v1/outlet/redemptions/{done['id']}/refunds", headers=desk,
                         json={"points": 2.9, "reason": "退货退款", "idempotency_key": "ref-frac-1"})
    assert refund.status_code == 422 and refund.json["error"]["details"] == {"points": ["必须是整数。"]}
    assert client.get("/api/v1/me/balance", headers=me).json["balance"] == 50
    hold = client.post("/api/v1/outlet/holds", headers={**desk, "Accept-Language": "en"}, json={
        "code": _code(client, session, person), "scenario_id": rice.id, "points": 7.99, "idempotency_key": "hold-frac-1"})
    assert hold.status_code == 422 and hold.json["error"]["details"] == {"points": ["Must be a whole number."]}
    assert client.get("/api/v1/me/balance", headers=me).json["balance"] == 50
    whole = client.post(f"/api/v1/outlet/redemptions/{done['id']}/refunds", headers=desk,
                        json={"points": 2, "reason": "退货退款", "idempotency_key": "ref-frac-2"})
    assert whole.status_code == 201 and whole.json["points"] == 2
    assert client.get("/api/v1/me/balance", headers=me).json["balance"] == 52
