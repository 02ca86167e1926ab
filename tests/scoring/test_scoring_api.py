"""Scoring over HTTP, as participants and staff use it."""
from __future__ import annotations

import datetime as dt
import hashlib
import io

from infra.clock import local_date
from tests import factories as f

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _people(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="张秀梅")
    neighbour = f.participant(session, tree.grid_a, name="王桂英")
    verifier = f.staff(session, "verifier", tree.town_a)
    return tree, person, neighbour, verifier


def test_participant_reports_work_and_follows_it_to_the_award(client, session):
    tree, person, neighbour, verifier = _people(session)
    me = f.bearer(session, "participant", person.id)
    yesterday = (local_date() - dt.timedelta(days=1)).isoformat()
    created = client.post("/api/v1/me/contributions", headers=me, json={
        "indicator_code": "INF-1", "work_date": yesterday, "description": "发现两户因宅基地争执，及时上报",
        "conflict_item": "C2-01", "warning_colour": "orange", "idempotency_key": "report-lead-0001"})
    assert created.status_code == 201 and created.json["state"] == "submitted"
    cid = created.json["id"]
    staff = f.bearer(session, "staff", verifier.id)
    queue = client.get("/api/v1/admin/contributions", headers=staff).json["items"]
    assert cid in [c["id"] for c in queue]
    verified = client.post(f"/api/v1/admin/contributions/{cid}/verify", headers=staff, json={})
    assert verified.status_code == 200 and verified.json["proposed_points"] == 6
    notice = client.get("/api/v1/notices", headers=f.bearer(session, "participant", neighbour.id)).json["items"]
    mine = next(n for n in notice if n["id"] == cid)
    assert mine["names"] == ["张*梅"] and mine["proposed_points"] == 6 and "张秀梅" not in str(notice)
    assert client.get(f"/api/v1/me/contributions/{cid}", headers=me).json["state"] == "in_notice"
    assert client.get(f"/api/v1/me/contributions/{cid}", headers=f.bearer(session, "participant", neighbour.id)
                      ).status_code == 404


def test_the_public_notice_pages_through_everything_on_notice(client, session):
    """More on notice than one page: every proposed award can be reached (and so objected to),
    each once, the notice ending soonest first."""
    tree, person, neighbour, verifier = _people(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    staff = f.bearer(session, "staff", verifier.id)
    made = [f.contribution(session, clerk, person, "PRO-1") for _ in range(5)]
    for c in made:
        assert client.post(f"/api/v1/admin/contributions/{c.id}/verify", headers=staff, json={}).status_code == 200
    reader = f.bearer(session, "participant", neighbour.id)
    seen, after, pages = [], None, 0
    while True:
        page = client.get("/api/v1/notices", headers=reader,
                          query_string={"limit": 2, **({"after": after} if after else {})})
        assert page.status_code == 200
        pages += 1
        seen += page.json["items"]
        after = page.json["next"]
        if after is None:
            break
    assert pages == 3 and sorted(n["id"] for n in seen) == sorted(c.id for c in made)
    assert [n["notice_until"] for n in seen] == sorted(n["notice_until"] for n in seen)
    assert all(n["names"] == ["张*梅"] for n in seen)
    unknown = client.get("/api/v1/notices", headers=reader, query_string={"after": 10**9})
    assert unknown.status_code == 404 and "after" in unknown.json["error"]["details"]
    too_many = client.get("/api/v1/notices", headers=reader, query_string={"limit": 500})
    assert too_many.status_code == 422 and "limit" in too_many.json["error"]["details"]


def test_objection_over_http_blocks_then_dismissal_releases(client, session):
    tree, person, neighbour, verifier = _people(session)
    c = f.contribution(session, f.staff(session, "clerk", tree.town_a), person, "PRO-1")
    staff = f.bearer(session, "staff", verifier.id)
    client.post(f"/api/v1/admin/contributions/{c.id}/verify", headers=staff, json={})
    objection = client.post(f"/api/v1/notices/{c.id}/objections", headers=f.bearer(session, "participant", neighbour.id),
                            json={"text": "活动当天她并未组织"})
    assert objection.status_code == 201
    detail = client.get(f"/api/v1/admin/contributions/{c.id}", headers=staff).json
    assert detail["objections"][0]["status"] == "open"
    resolved = client.post(f"/api/v1/admin/objections/{objection.json['id']}/resolve", headers=staff,
                           json={"uphold": False, "resolution": "核实签到表，确由其组织"})
    assert resolved.json["status"] == "dismissed"


def test_staff_list_only_the_notices_held_by_an_open_objection(client, session):
    """Staff resolve objections before the award: among many notices they ask for those held."""
    tree, person, neighbour, verifier = _people(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    staff = f.bearer(session, "staff", verifier.id)
    made = [f.contribution(session, clerk, person, "PRO-1") for _ in range(4)]
    for c in made:
        assert client.post(f"/api/v1/admin/contributions/{c.id}/verify", headers=staff, json={}).status_code == 200
    resident = f.bearer(session, "participant", neighbour.id)
    objected = [made[1].id, made[3].id]
    lodged = [client.post(f"/api/v1/notices/{cid}/objections", headers=resident, json={"text": "活动当天她并未组织"})
              for cid in objected]
    assert all(r.status_code == 201 for r in lodged)
    held = client.get("/api/v1/notices", headers=staff, query_string={"objected": "true", "limit": 1})
    assert [n["id"] for n in held.json["items"]] == [objected[0]] and held.json["items"][0]["open_objections"] == 1
    rest = client.get("/api/v1/notices", headers=staff,
                      query_string={"objected": "true", "limit": 1, "after": held.json["next"]}).json
    assert [n["id"] for n in rest["items"]] == [objected[1]] and rest["next"] is None
    client.post(f"/api/v1/admin/objections/{lodged[0].json['id']}/resolve", headers=staff,
                json={"uphold": False, "resolution": "核实签到表，确由其组织"})
    left = client.get("/api/v1/notices", headers=staff, query_string={"objected": "true"}).json["items"]
    assert [n["id"] for n in left] == [objected[1]]
    everything = client.get("/api/v1/notices", headers=staff).json["items"]
    assert sorted(n["id"] for n in everything) == sorted(c.id for c in made)


def test_my_grade_says_what_the_next_grade_needs(client, session):
    tree, person, _n, _v = _people(session)
    f.award(session, f.account_of(session, person).id, 40)
    grade = client.get("/api/v1/me/grade", headers=f.bearer(session, "participant", person.id)).json
    assert grade["points_12m"] == 40 and grade["grade"] is None
    assert grade["next_grade"]["code"] == "A" and grade["points_to_next"] == 10


def test_evidence_is_type_checked_and_served_only_to_those_allowed(client, session):
    tree, person, neighbour, verifier = _people(session)
    c = f.contribution(session, f.staff(session, "clerk", tree.town_a), person, "MED-1")
    me = f.bearer(session, "participant", person.id)
    fake = client.post(f"/api/v1/contributions/{c.id}/evidence", headers=me,
                       data={"file": (io.BytesIO(b"MZ\x90\x00evil"), "photo.jpg")}, content_type="multipart/form-data")
    assert fake.status_code == 422 and "file" in fake.json["error"]["details"]
    ok = client.post(f"/api/v1/contributions/{c.id}/evidence", headers=me,
                     data={"file": (io.BytesIO(PNG), "现场照片.png")}, content_type="multipart/form-data")
    assert ok.status_code == 201 and ok.json["content_type"] == "image/png"
    url = f"/api/v1/contributions/{c.id}/evidence/{ok.json['id']}"
    download = client.get(url, headers=f.bearer(session, "staff", verifier.id))
    assert download.status_code == 200 and download.data == PNG
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(url, headers=f.bearer(session, "participant", neighbour.id)).status_code == 404
    outsider = f.staff(session, "verifier", tree.town_b)
    assert client.get(url, headers=f.bearer(session, "staff", outsider.id)).status_code == 404


def test_a_partial_file_left_by_a_cut_short_write_is_replaced_not_served(app, client, session):
    """The same photo sent again after a write that was cut short (a full disk) is stored whole,
    and what is served is the photo, not its first bytes."""
    from scoring.api import storage

    tree, person, _neighbour, verifier = _people(session)
    c = f.contribution(session, f.staff(session, "clerk", tree.town_a), person, "MED-1")
    digest = hashlib.sha256(PNG).hexdigest()
    with app.test_request_context():
        partial = storage("evidence") / digest[:2] / digest
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(PNG[:10])
    sent = client.post(f"/api/v1/contributions/{c.id}/evidence", headers=f.bearer(session, "participant", person.id),
                       data={"file": (io.BytesIO(PNG), "现场照片.png")}, content_type="multipart/form-data")
    assert sent.status_code == 201
    download = client.get(f"/api/v1/contributions/{c.id}/evidence/{sent.json['id']}",
                          headers=f.bearer(session, "staff", verifier.id))
    assert download.data == PNG
    assert not [p for p in partial.parent.iterdir() if p.name.startswith(".upload-")]


def test_bad_contribution_input_names_every_field(client, session):
    _tree, person, _n, _v = _people(session)
    response = client.post("/api/v1/me/contributions", headers=f.bearer(session, "participant", person.id), json={
        "indicator_code": "inf1", "work_date": "yesterday", "warning_colour": "purple", "quantity": 0, "mood": "ok"})
    assert response.status_code == 422
    assert set(response.json["error"]["details"]) == {"indicator_code", "work_date", "warning_colour", "quantity",
                                                      "description", "mood", "idempotency_key"}
    future = client.post("/api/v1/me/contributions", headers=f.bearer(session, "participant", person.id), json={
        "indicator_code": "PRO-1", "work_date": (local_date() + dt.timedelta(days=2)).isoformat(),
        "description": "明天的活动", "idempotency_key": "report-future-0001"})
    assert future.status_code == 422 and "work_date" in future.json["error"]["details"]


def test_participants_cannot_submit_for_others(client, session):
    _tree, person, neighbour, _v = _people(session)
    response = client.post("/api/v1/me/contributions", headers=f.bearer(session, "participant", person.id), json={
        "indicator_code": "PRO-1", "work_date": local_date().isoformat(), "description": "替别人报",
        "members": [{"participant_id": neighbour.id}], "idempotency_key": "report-others-0001"})
    assert response.status_code == 403 and response.json["error"]["code"] == "not_a_member"


def test_rules_and_screening_list_are_published_for_everyone(client, session):
    rules = client.get("/api/v1/reference/rules").json
    assert len(rules["indicators"]) == 12 and rules["status"] == "published"
    screening = client.get("/api/v1/reference/screening-list").json
    assert len(screening["categories"]) == 8 and sum(len(c["items"]) for c in screening["categories"]) == 26


def test_admin_drafts_validates_and_publishes_rules_over_http(client, session):
    tree = f.region_tree(session)
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    draft = client.post("/api/v1/admin/rules", headers=admin, json={"from_version": 1})
    assert draft.status_code == 201 and draft.json["status"] == "draft"
    version = draft.json["version"]
    bad = client.patch(f"/api/v1/admin/rules/{version}", headers=admin, json={"grades": [
        {"code": "A", "min_points": 50}, {"code": "AA", "min_points": 150}]})
    assert bad.status_code == 422 and any(k.startswith("grade") for k in bad.json["error"]["details"])
    good = client.patch(f"/api/v1/admin/rules/{version}", headers=admin,
                        json={"notice_days": 7, "effective_from": (local_date() + dt.timedelta(days=1)).isoformat()})
    assert good.status_code == 200 and good.json["notice_days"] == 7
    assert client.post(f"/api/v1/admin/rules/{version}/validate", headers=admin).json == {"valid": True, "problems": []}
    published = client.post(f"/api/v1/admin/rules/{version}/publish", headers=admin)
    assert published.status_code == 200 and published.json["status"] == "published"
    again = client.patch(f"/api/v1/admin/rules/{version}", headers=admin, json={"notice_days": 1})
    assert again.status_code == 409


def test_members_do_not_learn_who_objected_but_auditors_do(client, session):
    from scoring.models import ContributionEvent

    tree, person, neighbour, verifier = _people(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    c = f.contribution(session, clerk, person, "PRO-1")
    client.post(f"/api/v1/admin/contributions/{c.id}/verify", headers=f.bearer(session, "staff", verifier.id), json={})
    objected = client.post(f"/api/v1/notices/{c.id}/objections", headers=f.bearer(session, "participant", neighbour.id),
                           json={"text": "活动当天她并未组织"})
    assert objected.status_code == 201
    # An objection recorded before objectors were labelled so: members still do not see its id.
    session.add(ContributionEvent(contribution_id=c.id, from_state="in_notice", to_state="in_notice",
                                  actor_kind="participant", actor_id=neighbour.id,
                                  actor_label=f"participant:{neighbour.id}", note="objection 0 lodged"))
    session.flush()
    detail = client.get(f"/api/v1/me/contributions/{c.id}", headers=f.bearer(session, "participant", person.id))
    assert f"participant:{neighbour.id}" not in detail.get_data(as_text=True)
    objections = [e for e in detail.json["events"] if e["from_state"] == e["to_state"] == "in_notice"]
    assert [e["actor_label"] for e in objections] == ["村（社区）居民", "村（社区）居民"]  # Chinese first
    assert objections[-1]["note"] == "收到异议（编号 0）。"  # the system's own note, in the reader's language
    english = client.get(f"/api/v1/me/contributions/{c.id}", headers={
        **f.bearer(session, "participant", person.id), "Accept-Language": "en"}).json["events"]
    english_objections = [e for e in english if e["from_state"] == e["to_state"] == "in_notice"]
    assert [e["actor_label"] for e in english_objections] == ["village resident"] * 2
    assert english_objections[-1]["note"] == "Objection 0 lodged."
    assert [e["actor_label"] for e in detail.json["events"][:2]] == [clerk.label, verifier.label]  # staff stay named
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.town_a).id)
    log = client.get("/api/v1/admin/audit", headers=auditor, query_string={"action": "objection.lodge"}).json["items"]
    assert [(e["actor_kind"], e["actor_id"], e["object_id"], e["details"]) for e in log] == [
        ("participant", neighbour.id, str(objected.json["id"]), {"contribution_id": c.id})]


def test_reasons_objections_and_resolutions_need_words_not_blanks(client, session):
    """Regression: a rejection reason the participant reads, an objection and its resolution
    could be only spaces; now each is a 422 naming its field."""
    tree, person, neighbour, verifier = _people(session)
    c = f.contribution(session, f.staff(session, "clerk", tree.town_a), person, "PRO-1")
    staff = f.bearer(session, "staff", verifier.id)
    r = client.post(f"/api/v1/admin/contributions/{c.id}/reject", headers=staff, json={"reason": "   "})
    assert r.status_code == 422 and set(r.json["error"]["details"]) == {"reason"}
    client.post(f"/api/v1/admin/contributions/{c.id}/verify", headers=staff, json={})
    neighbour_h = f.bearer(session, "participant", neighbour.id)
    r = client.post(f"/api/v1/notices/{c.id}/objections", headers=neighbour_h, json={"text": "\u3000\u3000\u3000\u3000"})
    assert r.status_code == 422 and set(r.json["error"]["details"]) == {"text"}
    objection = client.post(f"/api/v1/notices/{c.id}/objections", headers=neighbour_h, json={"text": "活动当天她并未组织"})
    r = client.post(f"/api/v1/admin/objections/{objection.json['id']}/resolve", headers=staff,
                    json={"uphold": False, "resolution": "  "})
    assert r.status_code == 422 and set(r.json["error"]["details"]) == {"resolution"}


def test_a_revocation_reason_the_request_accepts_is_not_refused_by_the_ledger(client, session):
    """Regression: a reason may have 500 characters, but the reversal's posting reason puts a label
    before it, and the ledger refused the revocation with a 422 "at most 500 characters" (and a
    `posting_index` in the details). Now the posting's reason is cut to the ledger's length; the
    contribution keeps the approver's words whole."""
    from scoring.services import awards, workflow

    tree, person, _neighbour, verifier = _people(session)
    c = f.contribution(session, f.staff(session, "clerk", tree.town_a), person, "MED-1")
    workflow.verify_many(session, verifier, [c.id])
    awards.award_due(session, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30), shards=f.SHARDS)
    approver = f.bearer(session, "staff", f.staff(session, "approver", tree.town_a).id)
    revoked = client.post(f"/api/v1/admin/contributions/{c.id}/revoke", headers=approver, json={"reason": "假" * 500})
    assert revoked.status_code == 200, revoked.json
    assert revoked.json["state"] == "revoked" and revoked.json["decision_reason"] == "假" * 500
    me = f.bearer(session, "participant", person.id)
    assert client.get("/api/v1/me/balance", headers=me).json["balance"] == 0


def test_verifying_again_names_the_contribution_in_a_list_like_every_field(client, session):
    """Regression: verifying work no longer submitted (alone or in a batch) was a 409 whose details
    held "contribution_id": 42, a bare number where every error gives a field a list of messages,
    and a name the request does not use; now it is contribution_ids: ["42"], as a 404 names it."""
    tree, person, _neighbour, verifier = _people(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    first, second = (f.contribution(session, clerk, person, "PRO-1") for _ in range(2))
    staff = f.bearer(session, "staff", verifier.id)
    assert client.post(f"/api/v1/admin/contributions/{first.id}/verify", headers=staff, json={}).status_code == 200
    for url, body in ((f"/api/v1/admin/contributions/{first.id}/verify", {}),
                      ("/api/v1/admin/contributions/verify", {"contribution_ids": [second.id, first.id]})):
        again = client.post(url, headers=staff, json=body)
        assert again.status_code == 409 and again.json["error"]["code"] == "wrong_state"
        details = again.json["error"]["details"]
        assert details == {"state": ["in_notice"], "contribution_ids": [str(first.id)]}


def test_a_verification_note_of_blanks_is_refused_and_the_work_stays_submitted(client, session):
    """A note is optional; one that is given says something (as a decision's note does)."""
    from scoring.models import Contribution

    tree, person, _neighbour, verifier = _people(session)
    work = f.contribution(session, f.staff(session, "clerk", tree.town_a), person, "PRO-1")
    staff = f.bearer(session, "staff", verifier.id)
    for url, body in ((f"/api/v1/admin/contributions/{work.id}/verify", {"note": "\u3000 "}),
                      ("/api/v1/admin/contributions/verify", {"contribution_ids": [work.id], "note": "   "})):
        refused = client.post(url, headers=staff, json=body)
        assert refused.status_code == 422 and set(refused.json["error"]["details"]) == {"note"}, refused.json
    session.expire_all()
    assert session.get(Contribution, work.id).state == "submitted"
    assert client.post(f"/api/v1/admin/contributions/{work.id}/verify", headers=staff,
                       json={"note": "核实无误"}).status_code == 200


def test_members_are_not_shown_the_numbers_of_other_peoples_work(client, session):
    """Regression: a resident's own contribution listed in `duplicate_of` (and in its history's
    note) work reported from another village with the same incident number, which they may not
    see. Members read their work without it; staff over it see the possible duplicates."""
    tree, person, _neighbour, _verifier = _people(session)
    elsewhere = f.contribution(session, f.staff(session, "clerk", tree.town_b), f.participant(session, tree.grid_b),
                               "INF-1", incident_ref="WG-2026-0001")
    me = f.bearer(session, "participant", person.id)
    created = client.post("/api/v1/me/contributions", headers=me, json={
        "indicator_code": "INF-1", "work_date": (local_date() - dt.timedelta(days=1)).isoformat(),
        "description": "发现两户因宅基地争执，及时上报", "conflict_item": "C2-01", "warning_colour": "orange",
        "incident_ref": "WG-2026-0001", "idempotency_key": "report-wg-2026-0001"})
    assert created.status_code == 201
    cid = created.json["id"]
    listed = client.get("/api/v1/me/contributions", headers=me).json["items"]
    detail = client.get(f"/api/v1/me/contributions/{cid}", headers=me).json
    for seen in (created.json, detail, next(c for c in listed if c["id"] == cid)):
        assert "duplicate_of" not in seen
    assert [e["note"] for e in detail["events"]] == [None]
    county = f.bearer(session, "staff", f.staff(session, "verifier", tree.county).id)
    staff_view = client.get(f"/api/v1/admin/contributions/{cid}", headers=county).json
    assert staff_view["duplicate_of"] == [elsewhere.id]
    assert staff_view["events"][0]["note"] == f"possible duplicate of [{elsewhere.id}]"
