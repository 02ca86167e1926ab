"""Staff keep participants' records right: correct a name, phone number or grid, and take someone
off the programme (and back on), each audited."""
from __future__ import annotations

from sqlalchemy import select

from identity import services as identity
from identity.models import AuditEntry
from tests import factories as f


def _login(client, phone: str, password: str = "pass-word-1"):
    return client.post("/api/v1/auth/participant/login", json={"phone": phone, "password": password})


def test_a_clerk_corrects_name_phone_and_grid_and_the_log_names_the_fields(client, session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="张秀梅")
    old_phone, new_phone = person.phone, "139" + person.phone[-8:]
    clerk = f.staff(session, "clerk", tree.county)
    staff = f.bearer(session, "staff", clerk.id)
    changed = client.patch(f"/api/v1/admin/participants/{person.id}", headers=staff,
                           json={"name": "张秀英", "phone": new_phone, "region_id": tree.grid_b.id})
    assert changed.status_code == 200, changed.json
    assert changed.json["name"] == "张秀英" and changed.json["region_id"] == tree.grid_b.id
    assert changed.json["phone"] != new_phone  # masked in the answer
    assert _login(client, new_phone).status_code == 201
    assert _login(client, old_phone).status_code == 401
    (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "participant.change",
                                                        AuditEntry.object_id == str(person.id))).all()
    assert entry.actor_id == clerk.id and entry.details["changed"] == ["name", "phone", "region_id"]
    assert new_phone not in str(entry.details)


def test_a_change_is_refused_with_the_field_named(client, session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    other = f.participant(session, tree.grid_a, name="王桂英")
    town_clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    url = f"/api/v1/admin/participants/{person.id}"

    taken = client.patch(url, headers=town_clerk, json={"phone": other.phone})
    assert taken.status_code == 409 and "phone" in taken.json["error"]["details"]
    outside = client.patch(url, headers=town_clerk, json={"region_id": tree.grid_b.id})
    assert outside.status_code == 404 and "region_id" in outside.json["error"]["details"]
    village = client.patch(url, headers=town_clerk, json={"region_id": tree.village_a.id})
    assert village.status_code == 422 and "region_id" in village.json["error"]["details"]
    for body, field in (({"name": "   "}, "name"), ({"phone": "123"}, "phone"), ({"nickname": "x"}, "nickname")):
        bad = client.patch(url, headers=town_clerk, json=body)
        assert bad.status_code == 422 and field in bad.json["error"]["details"], body
    nothing = client.patch(url, headers=town_clerk, json={})
    assert nothing.status_code == 422 and nothing.json["error"]["code"] == "nothing_to_change"
    verifier = f.bearer(session, "staff", f.staff(session, "verifier", tree.town_a).id)
    assert client.patch(url, headers=verifier, json={"name": "李四"}).status_code == 403
    other_town = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_b).id)
    assert client.patch(url, headers=other_town, json={"name": "李四"}).status_code == 404
    session.refresh(person)
    assert person.name == "张秀梅" and person.region_id == tree.grid_a.id


def test_taken_off_the_programme_a_participant_cannot_sign_in_use_a_token_or_redeem_a_code(app, client, session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="李桂兰")
    f.award(session, f.account_of(session, person).id, 80)
    partner, outlets, _desks = f.shop(session, tree.town_a, outlets=1)
    rice = f.scenario(session, partner, outlets, points_cost=30)
    admin = f.staff(session, "admin", tree.county)
    desk = {"X-Api-Key": identity.issue_api_key(session, admin, outlets[0].id)[0]}
    me = {"Authorization": f"Bearer {_login(client, person.phone).json['token']}"}
    code = client.post("/api/v1/me/codes", headers=me).json["code"]
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    url = f"/api/v1/admin/participants/{person.id}"

    blank = client.post(f"{url}/deactivate", headers=clerk, json={"reason": "  "})
    assert blank.status_code == 422 and "reason" in blank.json["error"]["details"]
    off = client.post(f"{url}/deactivate", headers=clerk, json={"reason": "本人申请退出"})
    assert off.status_code == 200 and off.json["active"] is False
    assert client.get("/api/v1/me/balance", headers=me).status_code == 401
    assert _login(client, person.phone).status_code == 401
    redeem = client.post("/api/v1/outlet/redemptions", headers=desk,
                         json={"code": code, "scenario_id": rice.id, "idempotency_key": "pos-off-0001"})
    assert redeem.status_code == 404
    again = client.post(f"{url}/deactivate", headers=clerk, json={"reason": "再次"})
    assert again.status_code == 409 and again.json["error"]["code"] == "already_in_state"
    (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "participant.deactivate",
                                                        AuditEntry.object_id == str(person.id))).all()
    assert entry.details == {"reason": "本人申请退出", "codes_withdrawn": 1}

    on = client.post(f"{url}/reactivate", headers=clerk, json={"reason": "重新加入"})
    assert on.status_code == 200 and on.json["active"] is True
    back = {"Authorization": f"Bearer {_login(client, person.phone).json['token']}"}
    assert client.get("/api/v1/me/balance", headers=back).json["balance"] == 80  # points kept


def test_a_code_asked_for_by_a_request_already_in_flight_when_the_participant_leaves_is_refused(session):
    """The phone's request resolved its token before the clerk took the participant off the
    programme: it must not make a code after the withdrawal, which the counter would then honour."""
    import datetime as dt

    import pytest

    from admin import services as admin
    from infra.errors import Unauthorized
    from ledger.services import accounts
    from redemption.services import codes, counter

    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="李桂兰")
    f.award(session, f.account_of(session, person).id, 80)
    partner, outlets, desks = f.shop(session, tree.town_a, outlets=1)
    rice = f.scenario(session, partner, outlets, points_cost=30)
    in_flight = identity.participant_principal(person)  # the phone's request, signed in a moment ago
    admin.set_participant_active(session, f.staff(session, "clerk", tree.town_a), person.id, active=False,
                                 reason="本人申请退出")
    with pytest.raises(Unauthorized):
        with session.begin_nested():
            digits, _ = codes.issue(session, in_flight, secret_key="test-secret", ttl=dt.timedelta(minutes=5))
            counter.redeem(session, desks[0], digits=digits, scenario_id=rice.id, idem_key="pos-left-0001",
                           cfg=f.counter_config())  # it was: redeemed, 30 points spent after leaving
    assert accounts.balance(session, f.account_of(session, person).id) == 80


def test_a_moved_participants_waiting_corrections_go_to_the_new_areas_approvers(client, session):
    """An adjustment waiting for approval when the participant moves to another township is
    decided there: the old township's approvers no longer see it, the new one's do."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    f.award(session, f.account_of(session, person).id, 30)
    requester = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    created = client.post("/api/v1/admin/adjustments", headers=requester, json={
        "participant_id": person.id, "amount": 80, "reason": "补录季度调解积分", "idempotency_key": "adj-move-01"})
    assert created.status_code == 201 and created.json["status"] == "pending"
    request_id = created.json["request"]["id"]
    county_clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.county).id)
    moved = client.patch(f"/api/v1/admin/participants/{person.id}", headers=county_clerk,
                         json={"region_id": tree.grid_b.id})
    assert moved.status_code == 200
    old_area = f.bearer(session, "staff", f.staff(session, "approver", tree.town_a).id)
    new_area = f.bearer(session, "staff", f.staff(session, "approver", tree.town_b).id)
    assert request_id not in [r["id"] for r in client.get("/api/v1/admin/approvals", headers=old_area).json]
    assert client.post(f"/api/v1/admin/approvals/{request_id}/decision", headers=old_area,
                       json={"approve": True}).status_code == 404
    assert request_id in [r["id"] for r in client.get("/api/v1/admin/approvals", headers=new_area).json]
    decided = client.post(f"/api/v1/admin/approvals/{request_id}/decision", headers=new_area, json={"approve": True})
    assert decided.status_code == 200 and decided.json["status"] == "approved"
