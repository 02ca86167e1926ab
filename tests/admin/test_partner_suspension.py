"""Staff suspend a partner or one outlet: its keys stop at once, in scope, audited."""
from __future__ import annotations

from sqlalchemy import select

from identity import services as identity
from identity.models import AuditEntry
from tests import factories as f


def _world(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    f.award(session, f.account_of(session, person).id, 80)
    partner, outlets, _desks = f.shop(session, tree.town_a)
    rice = f.scenario(session, partner, outlets, points_cost=10)
    admin = f.staff(session, "admin", tree.county)
    keys = [{"X-Api-Key": identity.issue_api_key(session, admin, o.id)[0]} for o in outlets]
    return tree, person, partner, outlets, rice, admin, keys


def _redeem(client, session, person, key, scenario, n: int) -> int:
    code = client.post("/api/v1/me/codes", headers=f.bearer(session, "participant", person.id)).json["code"]
    return client.post("/api/v1/outlet/redemptions", headers=key, json={
        "code": code, "scenario_id": scenario.id, "idempotency_key": f"susp-{n:06d}"}).status_code


def test_suspending_a_partner_stops_its_keys_at_once_and_is_audited(client, session):
    _tree, person, partner, _outlets, rice, admin, (desk, other) = _world(session)
    assert _redeem(client, session, person, desk, rice, 1) == 201  # the key is now known to this process
    staff = f.bearer(session, "staff", admin.id)
    done = client.post(f"/api/v1/admin/partners/{partner.id}/suspend", headers=staff)
    assert done.status_code == 200 and done.json["active"] is False
    assert _redeem(client, session, person, desk, rice, 2) == 401
    assert client.post("/api/v1/outlet/lookup", headers=other, json={"code": "00000001"}).status_code == 401
    assert client.post(f"/api/v1/admin/partners/{partner.id}/resume", headers=staff).json["active"] is True
    assert _redeem(client, session, person, desk, rice, 3) == 201
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "partner",
                                                              AuditEntry.object_id == str(partner.id))).all()
    assert {"partner.suspend", "partner.resume"} <= set(actions)


def test_suspending_one_outlet_stops_only_its_keys(client, session):
    _tree, person, _partner, outlets, rice, admin, (desk, other) = _world(session)
    staff = f.bearer(session, "staff", admin.id)
    done = client.post(f"/api/v1/admin/outlets/{outlets[0].id}/suspend", headers=staff)
    assert done.status_code == 200 and done.json["active"] is False
    assert _redeem(client, session, person, desk, rice, 4) == 401
    assert _redeem(client, session, person, other, rice, 5) == 201
    assert session.scalar(select(AuditEntry.id).where(AuditEntry.action == "outlet.suspend",
                                                      AuditEntry.object_id == str(outlets[0].id))) is not None


def test_only_admins_in_scope_suspend(client, session):
    tree, _person, partner, outlets, _rice, _admin, _keys = _world(session)
    elsewhere = f.bearer(session, "staff", f.staff(session, "admin", tree.town_b).id)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.county).id)
    assert client.post(f"/api/v1/admin/partners/{partner.id}/suspend", headers=elsewhere).status_code == 404
    assert client.post(f"/api/v1/admin/outlets/{outlets[0].id}/suspend", headers=elsewhere).status_code == 404
    assert client.post(f"/api/v1/admin/partners/{partner.id}/suspend", headers=clerk).status_code == 403


def test_a_taken_outlet_name_names_no_outlet_the_admin_cannot_see(client, session):
    """A township's admin sees a partner's outlets in the township only: the 409 of a name taken by
    the partner's outlet elsewhere says the name is taken, not which outlet has it."""
    tree = f.region_tree(session)
    partner, _outlets, _desks = f.shop(session, tree.town_a, outlets=0)
    hidden = identity.create_outlet(session, partner, name="乙乡门店", region=tree.town_b)
    town_admin = f.bearer(session, "staff", f.staff(session, "admin", tree.town_a).id)
    listed = client.get("/api/v1/admin/partners", headers=town_admin).json
    assert hidden.id not in [o["id"] for p in listed for o in p["outlets"]]
    taken = client.post(f"/api/v1/admin/partners/{partner.id}/outlets", headers=town_admin,
                        json={"name": "乙乡门店", "region_id": tree.town_a.id})
    assert taken.status_code == 409 and taken.json["error"]["code"] == "outlet_exists"
    assert taken.json["error"]["details"] == {"name": ["乙乡门店"]}
