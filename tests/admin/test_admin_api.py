"""Staff over HTTP: scope, masking, four-eyes corrections, integrity status and the audit log."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from identity.models import AuditEntry, StaffUser
from ledger.services import accounts
from tests import factories as f


def _world(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="李桂兰")
    account = f.account_of(session, person)
    f.award(session, account.id, 30)
    return tree, person, account


def test_staff_find_accounts_in_scope_with_phone_masked(client, session):
    tree, person, account = _world(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    headers = f.bearer(session, "staff", clerk.id)
    response = client.get("/api/v1/admin/accounts", query_string={"q": person.phone[-4:]}, headers=headers)
    row = next(r for r in response.json["items"] if r["id"] == account.id)
    assert row["balance"] == 30 and row["participant"]["name"] == "李桂兰"
    assert row["participant"]["phone"] == person.phone[:3] + "****" + person.phone[-4:]
    assert person.phone not in response.get_data(as_text=True)
    exact = client.get("/api/v1/admin/accounts", query_string={"q": person.phone}, headers=headers).json["items"]
    assert [r["id"] for r in exact] == [account.id]


def test_phone_fragments_do_not_match_so_masks_cannot_be_rebuilt(client, session):
    tree, person, _account = _world(session)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    for fragment in (person.phone[:5], person.phone[2:9], person.phone[-6:]):
        assert client.get("/api/v1/admin/accounts", query_string={"q": fragment}, headers=clerk).json["items"] == []


def test_auditors_see_names_masked(client, session):
    tree, person, account = _world(session)
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.county).id)
    rows = client.get("/api/v1/admin/accounts", query_string={"q": "李桂兰"}, headers=auditor).json["items"]
    assert [r["participant"]["name"] for r in rows if r["id"] == account.id] == ["李*兰"]


def test_staff_outside_scope_get_404_not_the_data(client, session):
    tree, person, account = _world(session)
    stranger = f.staff(session, "clerk", tree.town_b)
    headers = f.bearer(session, "staff", stranger.id)
    for url in (f"/api/v1/admin/accounts/{account.id}", f"/api/v1/admin/accounts/{account.id}/statement",
                f"/api/v1/admin/participants/{person.id}", f"/api/v1/admin/participants/{person.id}/contact"):
        response = client.get(url, headers=headers)
        assert response.status_code == 404, url
        assert "李桂兰" not in response.get_data(as_text=True)
    found = client.get("/api/v1/admin/accounts", query_string={"q": "李桂兰"}, headers=headers).json
    assert found["items"] == []


def test_staff_lists_show_a_township_only_its_own_and_a_staff_member_without_a_scope_path_nothing(session):
    """Every staff list filters with `Principal.scope_filter`; a principal that came without a
    scope path must see an empty list, never the whole county."""
    import dataclasses

    from admin import services
    from ledger.services import corrections

    tree, person, account = _world(session)
    partner, _outlets, _desks = f.shop(session, tree.town_a, outlets=1)
    town_a = f.staff(session, "admin", tree.town_a)
    services.reveal_participant(session, town_a, person.id)  # an audit entry in the township
    pending = corrections.request_adjustment(session, town_a, participant_id=person.id, amount=500,
                                             reason="补录季度调解积分", threshold=50, adjustment_shards=f.SHARDS)
    assert pending.request is not None
    lists = {
        "accounts": lambda actor: [r.account.id for r in accounts.find_accounts(session, actor, limit=100)[0]],
        "partners": lambda actor: [p.id for p in services.list_partners(session, actor)],
        "audit": lambda actor: [e.object_id for e in services.audit_log(session, actor, limit=100)[0]],
        "approvals": lambda actor: [r.id for r in corrections.list_requests(session, actor)],
    }
    mine = {"accounts": account.id, "partners": partner.id, "audit": str(person.id), "approvals": pending.request.id}
    town_b = f.staff(session, "admin", tree.town_b)
    scopeless = dataclasses.replace(f.staff(session, "admin", tree.county), scope_path=None)
    for name, listed in lists.items():
        assert mine[name] in listed(town_a), name
        assert mine[name] not in listed(town_b), name
        assert listed(scopeless) == [], name


def test_revealing_a_phone_number_is_audited(client, session):
    tree, person, _account = _world(session)
    verifier = f.staff(session, "verifier", tree.town_a)
    response = client.get(f"/api/v1/admin/participants/{person.id}/contact", headers=f.bearer(session, "staff", verifier.id))
    assert response.json["phone"] == person.phone
    assert session.scalar(select(AuditEntry.action).where(AuditEntry.actor_id == verifier.id,
                                                          AuditEntry.object_id == str(person.id))) \
        == "participant.reveal_contact"


def test_large_adjustment_needs_a_second_approver_over_http(client, session):
    tree, person, account = _world(session)
    requester = f.staff(session, "approver", tree.town_a)
    second = f.staff(session, "approver", tree.county)
    mine = f.bearer(session, "staff", requester.id)
    created = client.post("/api/v1/admin/adjustments", headers=mine, json={
        "participant_id": person.id, "amount": 80, "reason": "补录季度调解积分", "idempotency_key": "adj-000001"})
    assert created.status_code == 201 and created.json["status"] == "pending"
    again = client.post("/api/v1/admin/adjustments", headers=mine, json={
        "participant_id": person.id, "amount": 80, "reason": "补录季度调解积分", "idempotency_key": "adj-000001"})
    assert again.json["request"]["id"] == created.json["request"]["id"]
    request_id = created.json["request"]["id"]
    own = client.post(f"/api/v1/admin/approvals/{request_id}/decision", headers=mine, json={"approve": True})
    assert own.status_code == 403 and own.json["error"]["code"] == "four_eyes"
    pending = client.get("/api/v1/admin/approvals", headers=f.bearer(session, "staff", second.id)).json
    assert request_id in [r["id"] for r in pending]
    ok = client.post(f"/api/v1/admin/approvals/{request_id}/decision", headers=f.bearer(session, "staff", second.id),
                     json={"approve": True, "note": "核实无误"})
    assert ok.status_code == 200 and ok.json["status"] == "approved"
    assert accounts.balance(session, account.id) == 110
    statement = client.get(f"/api/v1/admin/accounts/{account.id}/statement", headers=mine).json
    assert statement["items"][0]["reason"] == "补录季度调解积分" and statement["items"][0]["kind"] == "adjustment"


def test_reversal_over_http_and_twice_is_refused(client, session):
    tree, person, account = _world(session)
    original = f.award(session, account.id, 6)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    approver = f.bearer(session, "staff", f.staff(session, "approver", tree.town_a).id)
    request = client.post("/api/v1/admin/reversals", headers=clerk,
                          json={"posting_id": original.posting_id, "reason": "重复上报"}).json
    decided = client.post(f"/api/v1/admin/approvals/{request['id']}/decision", headers=approver, json={"approve": True})
    assert decided.json["result_posting_id"]
    again = client.post("/api/v1/admin/reversals", headers=clerk,
                        json={"posting_id": original.posting_id, "reason": "再冲一次"})
    assert again.status_code == 409 and again.json["error"]["code"] == "already_reversed"
    posting = client.get(f"/api/v1/admin/postings/{decided.json['result_posting_id']}", headers=clerk).json
    assert posting["kind"] == "reversal" and posting["reverses_id"] == original.posting_id
    assert len(posting["entries"]) == 2 and all(len(e["hash"]) == 64 for e in posting["entries"])


def test_adjustment_input_errors_name_each_field(client, session):
    tree, _person, _account = _world(session)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    response = client.post("/api/v1/admin/adjustments", headers=clerk,
                           json={"participant_id": "x", "amount": 1.5, "colour": "red"})
    assert response.status_code == 422
    assert set(response.json["error"]["details"]) == {"participant_id", "amount", "reason", "colour"}


def test_auditor_runs_checks_and_reads_the_audit_log(client, session):
    tree, person, _account = _world(session)
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.county).id)
    clerk = f.staff(session, "clerk", tree.town_a)
    client.get(f"/api/v1/admin/participants/{person.id}/contact", headers=f.bearer(session, "staff", clerk.id))
    assert client.post("/api/v1/admin/ledger/checks", headers=auditor, json={"kind": "reconcile"}).status_code == 202
    status = client.get("/api/v1/admin/ledger/checks", headers=auditor).json
    assert status["reconcile"]["ok"] is True
    log = client.get("/api/v1/admin/audit", headers=auditor, query_string={"actor_id": clerk.id}).json
    assert [e["action"] for e in log["items"]] == ["participant.reveal_contact"]
    assert log["items"][0]["ip"] == "127.0.0.1"


def test_a_check_the_job_queue_refused_is_a_503_not_queued(client, session, monkeypatch):
    """Regression: with the broker down, `POST /admin/ledger/checks` answered 202 "queued" while the
    job was never sent, so nothing ran and nobody was told. Now a 503 `queue_unavailable` in the
    reader's language, no check is recorded, and the audit log says the run was not queued."""
    from kombu.exceptions import OperationalError

    from ledger import tasks
    from ledger.models import LedgerCheck

    tree, _person, _account = _world(session)
    user = f.staff(session, "auditor", tree.county)
    auditor = f.bearer(session, "staff", user.id)

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.verify_ledger, "apply_async", broker_down)
    checks = select(func.count()).select_from(LedgerCheck)
    before = session.scalar(checks)
    refused = client.post("/api/v1/admin/ledger/checks", headers=auditor, json={"kind": "verify"})
    assert refused.status_code == 503, refused.json
    assert refused.json["error"]["code"] == "queue_unavailable" and "queued" not in refused.json
    assert refused.json["error"]["message"] == "后台任务队列暂时不可用，任务未能排队，也未开始执行；请几分钟后再试。"
    assert refused.headers["Cache-Control"] == "no-store" and refused.headers["X-Content-Type-Options"] == "nosniff"
    english = client.post("/api/v1/admin/ledger/checks", headers={**auditor, "Accept-Language": "en"},
                          json={"kind": "verify"})
    assert english.status_code == 503 and english.json["error"]["message"].startswith("The job could not be queued")
    assert session.scalar(checks) == before
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == user.id)
                              .order_by(AuditEntry.id)).all()
    assert actions == ["ledger.verify.run", "ledger.verify.not_queued"] * 2
    monkeypatch.undo()  # the queue is back: queued, and (in-process here) run
    assert client.post("/api/v1/admin/ledger/checks", headers=auditor, json={"kind": "verify"}).status_code == 202
    assert session.scalar(checks) == before + 1


def test_audit_log_is_for_auditors_and_is_append_only(client, session):
    tree, person, _account = _world(session)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    assert client.get("/api/v1/admin/audit", headers=clerk).status_code == 403
    client.get(f"/api/v1/admin/participants/{person.id}/contact", headers=clerk)
    for sql in ("DELETE FROM audit_log", "UPDATE audit_log SET action = 'nothing'"):
        with pytest.raises(DBAPIError, match="append-only"):
            with session.begin_nested():
                session.execute(text(sql))


def test_admin_creates_staff_only_within_scope(client, session):
    tree = f.region_tree(session)
    town_admin = f.bearer(session, "staff", f.staff(session, "admin", tree.town_a).id)
    outside = client.post("/api/v1/admin/staff", headers=town_admin, json={
        "username": "newclerk", "display_name": "新录入员", "role": "clerk", "scope_region_id": tree.town_b.id,
        "password": "a-long-password"})
    assert outside.status_code == 404
    inside = client.post("/api/v1/admin/staff", headers=town_admin, json={
        "username": "newclerk", "display_name": "新录入员", "role": "clerk", "scope_region_id": tree.village_a.id,
        "password": "a-long-password"})
    assert inside.status_code == 201 and "password" not in inside.json


def test_enrol_participant_opens_an_account(client, session):
    tree = f.region_tree(session)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    response = client.post("/api/v1/admin/participants", headers=clerk, json={
        "name": "王秀英", "phone": "13712345678", "region_id": tree.grid_a.id, "password": "initial-pass"})
    assert response.status_code == 201 and response.json["phone"] == "137****5678"
    duplicate = client.post("/api/v1/admin/participants", headers=clerk, json={
        "name": "王秀英", "phone": "13712345678", "region_id": tree.grid_a.id})
    assert duplicate.status_code == 409 and "phone" in duplicate.json["error"]["details"]
    found = client.get("/api/v1/admin/accounts", headers=clerk, query_string={"q": "王秀英"}).json
    assert found["items"][0]["balance"] == 0


def test_township_admin_cannot_touch_another_townships_partners(client, session):
    from identity import services as identity

    tree = f.region_tree(session)
    partner_b = identity.create_partner(session, code=f.unique("PB"), name="乙乡超市", region=tree.town_b)
    outlet_b = identity.create_outlet(session, partner_b, name="乙乡门店", region=tree.town_b)
    admin_a = f.bearer(session, "staff", f.staff(session, "admin", tree.town_a).id)
    listed = client.get("/api/v1/admin/partners", headers=admin_a).json
    assert partner_b.id not in [p["id"] for p in listed]
    assert client.post(f"/api/v1/admin/partners/{partner_b.id}/outlets", headers=admin_a,
                       json={"name": "越权门店", "region_id": tree.town_b.id}).status_code == 404
    assert client.post(f"/api/v1/admin/outlets/{outlet_b.id}/api-keys", headers=admin_a, json={}).status_code == 404


def test_township_staff_see_and_manage_only_the_outlets_in_their_township(client, session):
    """A township's partner may have a branch in the next township: staff of the partner's
    township see the partner but not that branch, which is a 404 for them; the county sees both."""
    from admin import services
    from identity import services as identity

    tree = f.region_tree(session)
    partner = identity.create_partner(session, code=f.unique("PA"), name="甲镇超市", region=tree.town_a)
    here = identity.create_outlet(session, partner, name="甲镇门店", region=tree.village_a)
    there = identity.create_outlet(session, partner, name="乙乡分店", region=tree.town_b)
    county = f.staff(session, "admin", tree.county)
    _secret, key_there = identity.issue_api_key(session, county, there.id)
    town_a = f.staff(session, "admin", tree.town_a)
    admin_a = f.bearer(session, "staff", town_a.id)
    auditor_a = f.bearer(session, "staff", f.staff(session, "auditor", tree.town_a).id)
    for headers in (admin_a, auditor_a):
        listed = client.get("/api/v1/admin/partners", headers=headers)
        (seen,) = [p for p in listed.json if p["id"] == partner.id]
        assert [o["id"] for o in seen["outlets"]] == [here.id]
        assert "乙乡分店" not in listed.get_data(as_text=True)
    for auditor in (f.staff(session, "auditor", tree.county), county):
        (seen,) = [p for p in client.get("/api/v1/admin/partners", headers=f.bearer(session, "staff", auditor.id)).json
                   if p["id"] == partner.id]
        assert [o["id"] for o in seen["outlets"]] == [here.id, there.id]
    assert client.post(f"/api/v1/admin/outlets/{there.id}/api-keys", headers=admin_a, json={}).status_code == 404
    assert client.delete(f"/api/v1/admin/api-keys/{key_there.id}", headers=admin_a).status_code == 404
    session.refresh(key_there)
    assert key_there.revoked_at is None
    issued = client.post(f"/api/v1/admin/outlets/{here.id}/api-keys", headers=admin_a, json={})
    assert issued.status_code == 201
    assert client.delete(f"/api/v1/admin/api-keys/{issued.json['id']}", headers=admin_a).status_code == 200
    listed_here = services.list_partners(session, town_a)  # a copy: the partner's own collection stays whole
    assert [o.id for p in listed_here if p.id == partner.id for o in p.outlets] == [here.id]
    assert partner.outlets == [here, there]


def test_failed_staff_logins_are_audited(client, session):
    tree = f.region_tree(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    assert client.post("/api/v1/auth/staff/login", json={"username": clerk.label, "password": "nope"}).status_code == 401
    row = session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.login_failed",
                                                   AuditEntry.object_id == str(clerk.id))).one()
    assert row.ip == "127.0.0.1" and row.region_path == tree.town_a.path


def test_deactivating_staff_revokes_their_tokens(client, session):
    tree = f.region_tree(session)
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    clerk = f.staff(session, "clerk", tree.town_a)
    clerk_headers = f.bearer(session, "staff", clerk.id)
    assert client.get("/api/v1/auth/me", headers=clerk_headers).status_code == 200
    assert client.post(f"/api/v1/admin/staff/{clerk.id}/deactivate", headers=admin).status_code == 200
    assert client.get("/api/v1/auth/me", headers=clerk_headers).status_code == 401
    again = client.post("/api/v1/auth/staff/login", json={"username": clerk.label, "password": "long-enough-password"})
    assert again.status_code == 401


def test_township_staff_cannot_read_whole_ledger_checks(client, session):
    tree = f.region_tree(session)
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.town_a).id)
    assert client.get("/api/v1/admin/ledger/checks", headers=auditor).status_code == 403
    assert client.get("/api/v1/admin/ledger/digests", headers=auditor).status_code == 403


def test_only_county_admins_create_approvers(client, session):
    tree = f.region_tree(session)
    town_admin = f.bearer(session, "staff", f.staff(session, "admin", tree.town_a).id)
    response = client.post("/api/v1/admin/staff", headers=town_admin, json={
        "username": "sockpuppet", "display_name": "马甲", "role": "approver", "scope_region_id": tree.town_a.id,
        "password": "a-long-password"})
    assert response.status_code == 403


def test_a_retried_small_adjustment_over_http_posts_once(client, session):
    tree, person, account = _world(session)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    body = {"participant_id": person.id, "amount": 15, "reason": "补录调解积分", "idempotency_key": "adj-http-0001"}
    first = client.post("/api/v1/admin/adjustments", headers=clerk, json=body)
    retry = client.post("/api/v1/admin/adjustments", headers=clerk, json=body)
    assert first.status_code == retry.status_code == 201
    assert retry.json["status"] == "posted" and retry.json["posting_id"] == first.json["posting_id"]
    assert client.get("/api/v1/admin/approvals", headers=clerk).json == []
    assert accounts.balance(session, account.id) == 45
    reused = client.post("/api/v1/admin/adjustments", headers=clerk, json={**body, "amount": 16})
    assert reused.status_code == 422 and reused.json["error"]["code"] == "idempotency_key_reused"
    assert "adj-http-0001" in reused.json["error"]["details"]["idempotency_key"][0]
    assert accounts.balance(session, account.id) == 45


def test_a_redemption_is_refunded_at_the_counter_not_reversed_by_staff(client, session):
    """Regression: a reversed redemption could still be refunded: the points came back twice and
    the partner's settlement no longer reconciled."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from identity import services as identity

    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="李桂兰")
    account = f.account_of(session, person)
    f.award(session, account.id, 80)
    partner, outlets, _desks = f.shop(session, tree.town_a, outlets=1)
    rice = f.scenario(session, partner, outlets, points_cost=30, yuan_value_fen=3000)
    admin = f.staff(session, "admin", tree.county)
    desk = {"X-Api-Key": identity.issue_api_key(session, admin, outlets[0].id)[0]}
    done = client.post("/api/v1/outlet/redemptions", headers=desk, json={
        "code": f.code_for(session, person), "scenario_id": rice.id, "idempotency_key": "pos-rev-0001"}).json
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    refused = client.post("/api/v1/admin/reversals", headers=clerk,
                          json={"posting_id": done["posting_id"], "reason": "顾客退货"})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "managed_source"
    assert "/refunds" in refused.json["error"]["details"]["posting_id"][0]
    refund = client.post(f"/api/v1/outlet/redemptions/{done['id']}/refunds", headers=desk,
                         json={"reason": "顾客退货", "idempotency_key": "ref-rev-0001"})
    assert refund.status_code == 201
    assert accounts.balance(session, account.id) == 80
    month = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.county).id)
    report = client.get("/api/v1/admin/settlement", headers=auditor,
                        query_string={"partner_id": partner.id, "month": month}).json
    assert report["net_points"] == 0 and report["reconciled"] is True


def test_auditors_see_a_participants_name_masked_while_clerks_see_it_in_full(client, session):
    tree, person, _account = _world(session)
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.town_a).id)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    seen = client.get(f"/api/v1/admin/participants/{person.id}", headers=auditor)
    assert seen.status_code == 200
    assert (seen.json["name"], seen.json["phone"]) == ("李*兰", person.phone[:3] + "****" + person.phone[-4:])
    assert "李桂兰" not in seen.get_data(as_text=True)
    assert client.get(f"/api/v1/admin/participants/{person.id}", headers=clerk).json["name"] == "李桂兰"


def test_the_audit_log_shows_who_searched_not_the_numbers_and_names_searched_for(client, session):
    tree, person, account = _world(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    headers = f.bearer(session, "staff", clerk.id)
    for q in (person.phone, "李桂兰", person.phone[-4:], f"participant:{person.id}"):
        assert client.get("/api/v1/admin/accounts", query_string={"q": q}, headers=headers).status_code == 200
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.county).id)
    log = client.get("/api/v1/admin/audit", headers=auditor,
                     query_string={"actor_id": clerk.id, "action": "ledger.accounts.search"})
    assert person.phone not in log.get_data(as_text=True) and "李桂兰" not in log.get_data(as_text=True)
    assert [(e["details"]["kind"], e["details"]["q"], e["details"]["results"]) for e in reversed(log.json["items"])] == [
        ("phone", person.phone[:3] + "****" + person.phone[-4:], 1), ("name", "李*兰", 1),
        ("phone_last4", person.phone[-4:], 1), ("account_code", f"participant:{person.id}", 1)]


def test_searches_recorded_before_masking_are_masked_when_read(client, session):
    tree, person, _account = _world(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    for q in (person.phone, "李桂兰"):  # as the log kept them before queries were masked
        session.add(AuditEntry(actor_kind="staff", actor_id=clerk.id, actor_label=clerk.label,
                               action="ledger.accounts.search", region_path=tree.town_a.path,
                               details={"q": q, "results": 1}))
    session.flush()
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.county).id)
    log = client.get("/api/v1/admin/audit", headers=auditor, query_string={"actor_id": clerk.id})
    assert person.phone not in log.get_data(as_text=True) and "李桂兰" not in log.get_data(as_text=True)
    assert sorted(e["details"]["q"] for e in log.json["items"]) == sorted(
        [person.phone[:3] + "****" + person.phone[-4:], "李*兰"])


def test_a_failed_login_keeps_a_typed_password_out_of_the_audit_log(client, session):
    tree = f.region_tree(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    since = dt.datetime.now(dt.timezone.utc).isoformat()
    typed = "Summer-Secret-2024"  # a password typed into the username field
    for username in (typed, clerk.label):
        assert client.post("/api/v1/auth/staff/login", json={"username": username, "password": "nope"}).status_code == 401
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.county).id)
    log = client.get("/api/v1/admin/audit", headers=auditor,
                     query_string={"action": "staff.login_failed", "since": since})
    assert typed not in log.get_data(as_text=True)
    assert [(e["object_id"], e["details"]) for e in log.json["items"]] == [  # newest first
        (str(clerk.id), {"username": clerk.label, "known": True}), (None, {"username": "S***", "known": False})]
    assert all(e["ip"] == "127.0.0.1" for e in log.json["items"])


@pytest.mark.parametrize("role", ["admin", "approver"])
def test_only_county_admins_deactivate_admins_and_approvers(client, session, role):
    """Regression: a township admin, who may not create an admin or an approver, could deactivate
    the other admin or the approver of the township (and so lock out the staff who revoke awards)."""
    tree = f.region_tree(session)
    town_admin = f.bearer(session, "staff", f.staff(session, "admin", tree.town_a).id)
    peer = f.staff(session, role, tree.town_a)
    refused = client.post(f"/api/v1/admin/staff/{peer.id}/deactivate", headers=town_admin)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "scope_required", refused.json
    assert client.get("/api/v1/auth/me", headers=f.bearer(session, "staff", peer.id)).status_code == 200
    clerk = f.staff(session, "clerk", tree.town_a)  # the township admin's own staff: still theirs to cut off
    assert client.post(f"/api/v1/admin/staff/{clerk.id}/deactivate", headers=town_admin).status_code == 200
    county_admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    assert client.post(f"/api/v1/admin/staff/{peer.id}/deactivate", headers=county_admin).status_code == 200


@pytest.mark.parametrize(("path", "body", "name"), [
    ("/api/v1/admin/staff", {"username": "newclerk", "display_name": "新录入员", "role": "clerk"}, "newclerk"),
    ("/api/v1/admin/participants", {"name": "王秀英", "phone": "13712345679"}, "13712345679"),
])
@pytest.mark.parametrize("password", [" " * 12, "a" * 12, "1" * 12, "abababababab", "{name}{name}", "My-{name}"])
def test_a_password_anyone_could_guess_is_refused(client, session, path, body, name, password):
    """Regression: twelve spaces, one key held down, or the username (a participant's phone
    number) twice were accepted as a staff member's or a participant's password."""
    tree = f.region_tree(session)
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.town_a).id)
    where = {"scope_region_id": tree.village_a.id} if "staff" in path else {"region_id": tree.grid_a.id}
    refused = client.post(path, headers=admin, json={**body, **where, "password": password.format(name=name)})
    assert refused.status_code == 422 and set(refused.json["error"]["details"]) == {"password"}, refused.json
    accepted = client.post(path, headers=admin, json={**body, **where, "password": "a-long-password"})
    assert accepted.status_code == 201, accepted.json


def test_a_partners_account_is_seen_only_by_its_own_countys_staff(client, session):
    """Regression: any county's staff read every partner's ledger account, in another county too
    (`GET /admin/accounts/{id}`, its statement, and the `kind=partner` list): a partner's account
    counted as the county's like the system accounts. Now it is a 404 and missing from the list
    outside the partner's county; its own county's staff still see it."""
    tree, _person, account = _world(session)
    other = f.region_tree(session)
    theirs = f.partner_account(session, other.town_a)
    ours = f.partner_account(session, tree.town_a)
    f.spend(session, account.id, 5, theirs.id)
    for role in ("auditor", "clerk"):
        reader = f.bearer(session, "staff", f.staff(session, role, tree.county).id)
        for url in (f"/api/v1/admin/accounts/{theirs.id}", f"/api/v1/admin/accounts/{theirs.id}/statement"):
            assert client.get(url, headers=reader).status_code == 404, (role, url)
        assert client.get(f"/api/v1/admin/accounts/{ours.id}", headers=reader).status_code == 200
        listed = client.get("/api/v1/admin/accounts", headers=reader,
                            query_string={"kind": "partner", "limit": 100}).json["items"]
        assert ours.id in [r["id"] for r in listed] and theirs.id not in [r["id"] for r in listed]
    own = f.bearer(session, "staff", f.staff(session, "auditor", other.county).id)
    assert client.get(f"/api/v1/admin/accounts/{theirs.id}/statement", headers=own).json["items"][0]["amount"] == 5


def test_a_retried_outlet_registration_does_not_make_a_twin(client, session):
    """The request takes no idempotency key; a partner's outlet names are distinct instead."""
    from identity.models import Outlet
    from sqlalchemy import func, select

    tree = f.region_tree(session)
    partner, _outlets, _desks = f.shop(session, tree.town_a, outlets=1)
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    body = {"name": "城关东门店", "region_id": tree.town_a.id}
    first = client.post(f"/api/v1/admin/partners/{partner.id}/outlets", headers=admin, json=body)
    assert first.status_code == 201, first.json
    again = client.post(f"/api/v1/admin/partners/{partner.id}/outlets", headers=admin, json=body)
    assert again.status_code == 409
    assert again.json["error"]["code"] == "outlet_exists"
    assert again.json["error"]["details"] == {"name": ["城关东门店"], "outlet_id": first.json["id"]}
    assert session.scalar(select(func.count()).select_from(Outlet).where(
        Outlet.partner_id == partner.id, Outlet.name == "城关东门店")) == 1
    other, _o, _d = f.shop(session, tree.town_a, outlets=1)  # another partner may use the name
    assert client.post(f"/api/v1/admin/partners/{other.id}/outlets", headers=admin, json=body).status_code == 201


def _make_staff(client, headers, role, scope, username):
    """A staff account made over HTTP, as an admin makes one, and its sign-in."""
    made = client.post("/api/v1/admin/staff", headers=headers, json={
        "username": username, "display_name": "新同事", "role": role, "scope_region_id": scope.id,
        "password": "a-long-password"})
    assert made.status_code == 201, made.json
    return made.json, f.login(client, username, "a-long-password")


def test_a_township_admin_cannot_approve_what_a_clerk_they_created_asked_for(client, session):
    """Regression: the admin (who holds every role) made a clerk, signed in as it, asked for
    100000 points and approved them as the admin: four eyes, one person. Another approver may."""
    tree, person, account = _world(session)
    admin = f.staff(session, "admin", tree.town_a)
    town_admin = f.bearer(session, "staff", admin.id)
    made, as_clerk = _make_staff(client, town_admin, "clerk", tree.town_a, "puppetclerk")
    asked = client.post("/api/v1/admin/adjustments", headers=as_clerk, json={
        "participant_id": person.id, "amount": 100000, "reason": "补录年度积分"})
    assert asked.status_code == 201 and asked.json["status"] == "pending"
    request_id = asked.json["request"]["id"]
    refused = client.post(f"/api/v1/admin/approvals/{request_id}/decision", headers=town_admin, json={"approve": True})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "four_eyes"
    assert accounts.balance(session, account.id) == 30
    # The same for a reversal the clerk asks for: it goes through the same decision.
    original = f.award(session, account.id, 5)
    reversal = client.post("/api/v1/admin/reversals", headers=as_clerk,
                           json={"posting_id": original.posting_id, "reason": "重复上报"}).json
    assert client.post(f"/api/v1/admin/approvals/{reversal['id']}/decision", headers=town_admin,
                       json={"approve": False, "note": "不予冲正"}).status_code == 403
    # A second pair of eyes that is someone else's decides as before.
    approver = f.bearer(session, "staff", f.staff(session, "approver", tree.county).id)
    ok = client.post(f"/api/v1/admin/approvals/{request_id}/decision", headers=approver,
                     json={"approve": False, "note": "金额不合理"})
    assert ok.status_code == 200 and ok.json["status"] == "rejected"
    listed = client.get("/api/v1/admin/staff", headers=town_admin).json
    assert next(u for u in listed if u["id"] == made["id"])["created_by"] == made["created_by"] == admin.id


def test_an_approver_cannot_decide_what_the_admin_who_created_them_asked_for(client, session):
    """The other way round: a county admin makes an approver (and knows its first password),
    asks for an adjustment as the admin, and approves it as the approver."""
    tree, person, account = _world(session)
    county_admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    _made, as_approver = _make_staff(client, county_admin, "approver", tree.county, "puppetapprover")
    asked = client.post("/api/v1/admin/adjustments", headers=county_admin, json={
        "participant_id": person.id, "amount": 500, "reason": "补录年度积分"})
    request_id = asked.json["request"]["id"]
    refused = client.post(f"/api/v1/admin/approvals/{request_id}/decision", headers=as_approver,
                          json={"approve": True})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "four_eyes"
    assert accounts.balance(session, account.id) == 30


def test_a_debit_beyond_the_balance_names_the_amount_and_nothing_the_request_did_not_send(client, session):
    """The 409's details were {"amount": [...], "account_id": 3, "posting_index": 0}: an internal
    account id and a batch index, bare numbers under fields no request has."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    f.award(session, f.account_of(session, person).id, 10)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    requester = f.bearer(session, "staff", f.staff(session, "approver", tree.town_a).id)
    approver = f.bearer(session, "staff", f.staff(session, "approver", tree.county).id)
    now = client.post("/api/v1/admin/adjustments", headers=clerk, json={
        "participant_id": person.id, "amount": -15, "reason": "多计的积分扣回"})
    assert now.status_code == 409 and now.json["error"]["code"] == "insufficient_balance"
    assert now.json["error"]["details"] == {"amount": ["余额 10 少于 15。"]}
    pending = client.post("/api/v1/admin/adjustments", headers=requester, json={
        "participant_id": person.id, "amount": -25, "reason": "多计的积分扣回"})
    assert pending.status_code == 201 and pending.json["status"] == "pending"
    decided = client.post(f"/api/v1/admin/approvals/{pending.json['request']['id']}/decision",
                          headers={**approver, "Accept-Language": "en"}, json={"approve": True})
    assert decided.status_code == 409 and decided.json["error"]["code"] == "insufficient_balance"
    assert decided.json["error"]["details"] == {"amount": ["Balance 10 is less than 25."]}


@pytest.mark.parametrize("role", ["verifier", "approver", "admin"])
def test_a_township_admin_creates_clerks_and_auditors_only(client, session, role):
    """Regression: a township admin made a clerk and a verifier (or an approver) in one sitting,
    knew both first passwords, and submitted as one and verified as the other. The roles that are
    a second pair of eyes, or hand out power, are the county admin's to give."""
    tree = f.region_tree(session)
    town_admin = f.bearer(session, "staff", f.staff(session, "admin", tree.town_a).id)
    refused = client.post("/api/v1/admin/staff", headers={**town_admin, "Accept-Language": "zh"}, json={
        "username": f"made{role}", "display_name": "新同事", "role": role, "scope_region_id": tree.town_a.id,
        "password": "a-long-password"})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "scope_required", refused.json
    assert refused.json["error"]["details"] == {"role": ["乡镇或村级管理员只能创建录入员和审计员。"]}
    assert session.query(StaffUser).filter_by(username=f"made{role}").count() == 0
    for allowed in ("clerk", "auditor"):
        _make_staff(client, town_admin, allowed, tree.village_a, f"made{role}{allowed}")
    county_admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    _make_staff(client, county_admin, role, tree.town_a, f"made{role}bycounty")


def test_accounts_one_township_admin_made_are_not_each_others_second_pair_of_eyes(client, session):
    """Before township admins lost the verifier and approver roles, one could make a clerk and an
    approver: the clerk asked for 100000 points and the approver approved them. Such accounts
    (made directly here: the API no longer makes them) stay one hand; another approver decides."""
    tree, person, account = _world(session)
    town_admin = f.staff(session, "admin", tree.town_a)
    clerk = f.staff(session, "clerk", tree.town_a, created_by=town_admin.id)
    sibling = f.bearer(session, "staff", f.staff(session, "approver", tree.town_a, created_by=town_admin.id).id)
    asked = client.post("/api/v1/admin/adjustments", headers=f.bearer(session, "staff", clerk.id), json={
        "participant_id": person.id, "amount": 100000, "reason": "补录年度积分"})
    request_id = asked.json["request"]["id"]
    refused = client.post(f"/api/v1/admin/approvals/{request_id}/decision", headers=sibling, json={"approve": True})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "four_eyes", refused.json
    assert accounts.balance(session, account.id) == 30
    other = f.bearer(session, "staff", f.staff(session, "approver", tree.county).id)
    ok = client.post(f"/api/v1/admin/approvals/{request_id}/decision", headers=other, json={"approve": False,
                                                                                              "note": "金额不合理"})
    assert ok.status_code == 200 and ok.json["status"] == "rejected"


def test_a_county_admin_is_trusted_and_the_audit_log_shows_whom_it_made(client, session):
    """The county admin is the root of trust: a clerk and an approver it made decide each other's
    requests (every account of a county descends from it, so refusing siblings would leave nobody
    to decide). What it did is in the audit log: both creations, by it."""
    tree, person, account = _world(session)
    admin = f.staff(session, "admin", tree.county)
    county_admin = f.bearer(session, "staff", admin.id)
    clerk, as_clerk = _make_staff(client, county_admin, "clerk", tree.town_a, "countyclerk")
    approver, as_approver = _make_staff(client, county_admin, "approver", tree.town_a, "countyapprover")
    asked = client.post("/api/v1/admin/adjustments", headers=as_clerk, json={
        "participant_id": person.id, "amount": 100000, "reason": "补录年度积分"})
    approved = client.post(f"/api/v1/admin/approvals/{asked.json['request']['id']}/decision", headers=as_approver,
                           json={"approve": True})
    assert approved.status_code == 200 and approved.json["status"] == "approved", approved.json
    assert accounts.balance(session, account.id) == 100030
    log = client.get("/api/v1/admin/audit", headers=county_admin, query_string={"action": "staff.create"}).json
    made = {e["object_id"]: (e["actor_id"], e["details"]["role"]) for e in log["items"]}
    assert made == {str(clerk["id"]): (admin.id, "clerk"), str(approver["id"]): (admin.id, "approver")}
