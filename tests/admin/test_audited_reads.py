"""Staff reads of participants' personal data are in the audit log: one record per request (not
per row) naming who read what, where, with which filters and from where; the auditor's view
shows them. Participants' own reads and outlets' reads are not staff actions and are not recorded."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from identity import services as identity
from identity.models import AuditEntry
from tests import factories as f


def _world(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="李桂兰")
    neighbour = f.participant(session, tree.grid_a, name="王桂英")
    f.award(session, f.account_of(session, person).id, 80)
    f.account_of(session, neighbour)
    return tree, person, neighbour


def _since() -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)).isoformat()


def _records(session, actor_id: int) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.actor_kind == "staff",
                                                         AuditEntry.actor_id == actor_id).order_by(AuditEntry.id)))


def test_browsing_accounts_and_the_verification_queue_is_recorded_once_per_request(client, session):
    tree, person, neighbour = _world(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    headers = f.bearer(session, "staff", clerk.id)
    works = [f.contribution(session, clerk, p) for p in (person, neighbour)]
    verifier = f.staff(session, "verifier", tree.town_a)
    staff = f.bearer(session, "staff", verifier.id)

    listed = client.get("/api/v1/admin/accounts", headers=headers,
                        query_string={"region_id": tree.village_a.id, "kind": "participant"})
    assert listed.status_code == 200 and len(listed.json["items"]) == 2
    queue = client.get("/api/v1/admin/contributions", headers=staff, query_string={"indicator_code": "INF-1"})
    assert {c["id"] for c in queue.json["items"]} >= {w.id for w in works}
    assert client.get(f"/api/v1/admin/contributions/{works[0].id}", headers=staff).status_code == 200
    # Nothing that names nobody: a page of system accounts asked for by kind.
    assert client.get("/api/v1/admin/accounts", headers=headers, query_string={"kind": "issuance"}).status_code == 200

    (browse,) = [e for e in _records(session, clerk.id) if e.action.startswith("ledger.accounts.")]
    assert (browse.action, browse.region_path, browse.ip) == ("ledger.accounts.list", tree.village_a.path, "127.0.0.1")
    assert browse.details == {"region_id": tree.village_a.id, "account_kind": "participant", "results": 2}
    seen = [(e.action, e.object_type, e.object_id, e.region_path) for e in _records(session, verifier.id)]
    assert seen == [("contribution.list", None, None, tree.town_a.path),
                    ("contribution.view", "contribution", str(works[0].id), works[0].region_path)]
    assert _records(session, verifier.id)[0].details == {"state": "submitted", "indicator_code": "INF-1",
                                                         "results": len(queue.json["items"])}

    # The county's auditor reads them: who, what, from where. Another township's auditor does not.
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.county).id)
    log = client.get("/api/v1/admin/audit", headers=auditor, query_string={"actor_id": verifier.id}).json["items"]
    assert [(e["actor_label"], e["action"], e["object_id"], e["ip"]) for e in log] == [
        (verifier.label, "contribution.view", str(works[0].id), "127.0.0.1"),
        (verifier.label, "contribution.list", None, "127.0.0.1")]
    town_a_auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.town_a).id)
    mine = client.get("/api/v1/admin/audit", headers=town_a_auditor,
                      query_string={"actor_id": clerk.id, "action": "ledger.accounts.list"}).json["items"]
    assert [e["details"]["region_id"] for e in mine] == [tree.village_a.id]
    town_b_auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.town_b).id)
    assert client.get("/api/v1/admin/audit", headers=town_b_auditor,
                      query_string={"actor_id": verifier.id}).json["items"] == []


def test_a_participants_grade_and_the_honours_ranking_are_audited(client, session):
    tree, person, _neighbour = _world(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    headers = f.bearer(session, "staff", clerk.id)
    assert client.get(f"/api/v1/admin/participants/{person.id}/grade", headers=headers).status_code == 200
    year = dt.datetime.now(ZoneInfo("Asia/Shanghai")).year
    ranked = client.get("/api/v1/admin/honours/candidates", headers=headers, query_string={
        "township_id": tree.town_a.id, "year": year, "honour": "loan_priority"})
    assert ranked.status_code == 200
    assert [(e.action, e.object_type, e.object_id, e.region_path, e.details) for e in _records(session, clerk.id)] == [
        ("participant.grade.view", "participant", str(person.id), person.region_path, {}),
        ("honour.candidates.list", "township", str(tree.town_a.id), tree.town_a.path,
         {"year": year, "honour": "loan_priority", "results": len(ranked.json)})]
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.town_a).id)
    log = client.get("/api/v1/admin/audit", headers=auditor,
                     query_string={"actor_id": clerk.id, "since": _since()}).json["items"]
    assert [e["action"] for e in log] == ["honour.candidates.list", "participant.grade.view"]


def test_a_settlement_download_says_which_format_left_the_system(client, session):
    tree = f.region_tree(session)
    partner, _outlets, _desks = f.shop(session, tree.town_a)
    clerk = f.staff(session, "clerk", tree.town_a)
    headers = f.bearer(session, "staff", clerk.id)
    month = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    for fmt in ("json", "csv"):
        assert client.get("/api/v1/admin/settlement", headers=headers,
                          query_string={"partner_id": partner.id, "month": month, "format": fmt}).status_code == 200
    assert [(e.action, e.details) for e in _records(session, clerk.id)] == [
        ("settlement.view", {"month": month, "format": "json"}), ("settlement.view", {"month": month, "format": "csv"})]


def test_participants_own_reads_and_outlets_reads_are_not_staff_actions(client, session):
    tree, person, _neighbour = _world(session)
    work = f.contribution(session, f.staff(session, "clerk", tree.town_a), person)
    before = session.scalar(select(func.count()).select_from(AuditEntry))
    me = f.bearer(session, "participant", person.id)
    for url in ("/api/v1/me/balance", "/api/v1/me/statement", "/api/v1/me/contributions",
                f"/api/v1/me/contributions/{work.id}", "/api/v1/me/grade", "/api/v1/me/redemptions"):
        assert client.get(url, headers=me).status_code == 200, url
    partner, outlets, _desks = f.shop(session, tree.town_a, outlets=1)
    admin = f.staff(session, "admin", tree.county)
    desk = {"X-Api-Key": identity.issue_api_key(session, admin, outlets[0].id)[0]}
    after_key = session.scalar(select(func.count()).select_from(AuditEntry))  # issuing the key is audited
    month = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    assert client.get("/api/v1/outlet/redemptions/month", headers=desk, query_string={"month": month}).status_code == 200
    assert client.get("/api/v1/outlet/scenarios", headers=desk).status_code == 200
    assert after_key == before + 1
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == after_key


def test_reading_the_corrections_waiting_for_a_decision_is_recorded(client, session):
    """Each request in the list names a participant's account, an amount and a reason."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    assert client.post("/api/v1/admin/adjustments", headers=clerk,
                       json={"participant_id": person.id, "amount": 50, "reason": "补录积分"}).status_code == 201
    approver = f.staff(session, "approver", tree.town_a)
    listed = client.get("/api/v1/admin/approvals", headers=f.bearer(session, "staff", approver.id))
    assert listed.status_code == 200 and len(listed.json) == 1
    (record,) = [e for e in _records(session, approver.id) if e.action == "ledger.approvals.list"]
    assert (record.region_path, record.ip, record.details) == (tree.town_a.path, "127.0.0.1",
                                                               {"status": "pending", "results": 1})
