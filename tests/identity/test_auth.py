"""Sign-in, tokens, API keys and rate limits, through HTTP as clients see them."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from identity.models import ApiKey, AuditEntry, AuthToken
from infra.security import digest_secret
from tests import factories as f


def test_staff_login_gives_a_token_that_works_and_is_stored_hashed(client, session):
    tree = f.region_tree(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    response = client.post("/api/v1/auth/staff/login", json={"username": clerk.label, "password": "long-enough-password"})
    assert response.status_code == 201
    token = response.json["token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json["kind"] == "staff" and me.json["role"] == "clerk"
    stored = session.scalars(select(AuthToken.token_digest)).all()
    assert token not in stored and digest_secret(token) in stored
    login_audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.login",
                                                           AuditEntry.actor_id == clerk.id)).one()
    assert login_audit.ip == "127.0.0.1"


def test_a_township_auditor_sees_its_staff_sign_in_and_out(client, session):
    tree = f.region_tree(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    token = client.post("/api/v1/auth/staff/login",
                        json={"username": clerk.label, "password": "long-enough-password"}).json["token"]
    assert client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 204
    for town, seen in ((tree.town_a, ["staff.logout", "staff.login"]), (tree.town_b, [])):
        auditor = f.bearer(session, "staff", f.staff(session, "auditor", town).id)
        log = client.get("/api/v1/admin/audit", headers=auditor, query_string={"actor_id": clerk.id}).json
        assert [e["action"] for e in log["items"]] == seen


def test_wrong_password_is_401_with_a_stable_code(client, session):
    tree = f.region_tree(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    response = client.post("/api/v1/auth/staff/login", json={"username": clerk.label, "password": "wrong"})
    assert response.status_code == 401 and response.json["error"]["code"] == "bad_credentials"
    unknown = client.post("/api/v1/auth/staff/login", json={"username": "nobody-here", "password": "wrong"})
    assert unknown.status_code == 401 and unknown.json == response.json


def test_passwords_are_argon2id(session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    assert person.password_hash.startswith("$argon2id$")


def test_participant_login_and_logout(client, session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, password="my-secret-9")
    response = client.post("/api/v1/auth/participant/login", json={"phone": person.phone, "password": "my-secret-9"})
    headers = {"Authorization": f"Bearer {response.json['token']}"}
    assert client.get("/api/v1/me/balance", headers=headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/me/balance", headers=headers).status_code == 401


def test_login_is_rate_limited(app, client, session):
    app.config["SETTINGS"].login_rate_limit = "3 per minute"
    try:
        answers = [client.post("/api/v1/auth/staff/login", json={"username": "x", "password": "y"})
                   for _ in range(5)]
    finally:
        app.config["SETTINGS"].login_rate_limit = "1000 per minute"
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429]
    assert answers[-1].json["error"]["code"] == "rate_limited"
    assert int(answers[-1].headers["Retry-After"]) == 60  # the window of "3 per minute"
    limited = client.post("/api/v1/auth/participant/login", json={"phone": "13800000000", "password": "y"})
    assert limited.status_code in (401, 429)


def test_bad_login_input_names_the_field(client):
    response = client.post("/api/v1/auth/participant/login", json={"phone": "123", "password": "x", "extra": 1})
    assert response.status_code == 422
    assert set(response.json["error"]["details"]) == {"phone", "extra"}


def test_outlet_api_key_is_shown_once_stored_hashed_and_revocable(client, session):
    tree = f.region_tree(session)
    admin = f.staff(session, "admin", tree.county)
    headers = f.bearer(session, "staff", admin.id)
    partner = client.post("/api/v1/admin/partners", headers=headers,
                          json={"code": f.unique("p"), "name": "惠民超市", "region_id": tree.town_a.id}).json
    outlet = client.post(f"/api/v1/admin/partners/{partner['id']}/outlets", headers=headers,
                         json={"name": "城关店", "region_id": tree.town_a.id}).json
    issued = client.post(f"/api/v1/admin/outlets/{outlet['id']}/api-keys", headers=headers, json={"label": "收银台1"})
    assert issued.status_code == 201
    key = issued.json["key"]
    assert session.scalar(select(ApiKey.key_digest).where(ApiKey.id == issued.json["id"])) == digest_secret(key)
    me = client.get("/api/v1/auth/me", headers={"X-Api-Key": key})
    assert me.json["kind"] == "outlet" and me.json["partner_id"] == partner["id"]
    assert client.delete(f"/api/v1/admin/api-keys/{issued.json['id']}", headers=headers).status_code == 200
    assert client.get("/api/v1/auth/me", headers={"X-Api-Key": key}).status_code == 401
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == admin.id)).all()
    assert {"partner.create", "outlet.create", "api_key.issue", "api_key.revoke"} <= set(actions)


def test_a_retried_key_issue_gets_the_first_key_and_issues_no_second(client, session):
    """An admin whose request timed out sends it again: the retry answers 200 with the first key's
    id and metadata (the key itself was in the first answer only: only its digest is kept), and no
    second live key exists that nobody has seen. The same idempotency key for another outlet or
    label is a 422 naming the key it issued."""
    tree = f.region_tree(session)
    admin = f.staff(session, "admin", tree.county)
    headers = f.bearer(session, "staff", admin.id)
    _partner, (outlet, other), _desks = f.shop(session, tree.town_a)
    url = f"/api/v1/admin/outlets/{outlet.id}/api-keys"
    body = {"label": "收银台1", "idempotency_key": "issue-key-收银台1-0001"}
    first = client.post(url, headers=headers, json=body)
    assert first.status_code == 201 and first.json["key"].startswith("jy_key") and first.json["replayed"] is False
    again = client.post(url, headers=headers, json=body)
    assert again.status_code == 200 and again.json["replayed"] is True and again.json["key"] is None
    assert {k: again.json[k] for k in ("id", "outlet_id", "prefix", "label", "created_at")} == \
        {k: first.json[k] for k in ("id", "outlet_id", "prefix", "label", "created_at")}
    assert session.scalars(select(ApiKey.id).where(ApiKey.outlet_id == outlet.id)).all() == [first.json["id"]]
    assert client.get("/api/v1/auth/me", headers={"X-Api-Key": first.json["key"]}).json["id"] == outlet.id
    issued = session.scalars(select(AuditEntry.object_id).where(AuditEntry.action == "api_key.issue",
                                                                AuditEntry.actor_id == admin.id)).all()
    assert issued == [str(first.json["id"])]

    for changed in ({**body, "label": "收银台2"}, {"idempotency_key": body["idempotency_key"]}):
        refused = client.post(url, headers=headers, json=changed)
        assert refused.status_code == 422 and refused.json["error"]["code"] == "idempotency_key_reused"
        assert refused.json["error"]["details"]["idempotency_key"] == [
            f"幂等键 '{body['idempotency_key']}' 已用于内容不同的接口密钥 {first.json['id']}。"]
    elsewhere = client.post(f"/api/v1/admin/outlets/{other.id}/api-keys", headers={**headers, "Accept-Language": "en"},
                            json=body)
    assert elsewhere.status_code == 422 and elsewhere.json["error"]["details"]["idempotency_key"] == [
        f"Key '{body['idempotency_key']}' was used for API key {first.json['id']} with other content."]
    assert session.scalar(select(ApiKey.id).where(ApiKey.outlet_id == other.id)) is None

    # The key is the sender's: another admin choosing the same one issues a key of their own.
    colleague = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    theirs = client.post(url, headers=colleague, json=body)
    assert theirs.status_code == 201 and theirs.json["id"] != first.json["id"]


@pytest.mark.concurrency
def test_a_retry_racing_its_first_attempt_gets_the_same_key(committed_factory):
    """The first request is still in flight (its client gave up waiting) when the retry arrives:
    the retry waits for it and answers with its key, not a second key nor a 409."""
    from identity import services as identity
    from tests.concurrency import while_holding

    with committed_factory() as s:
        tree = f.region_tree(s)
        admin = f.staff(s, "admin", tree.county)
        _partner, (outlet,), _desks = f.shop(s, tree.town_a, outlets=1)
        s.commit()
    key = f"race-{f.unique('k')}"
    (first_secret, first), (retry_secret, retried) = while_holding(
        committed_factory,
        lambda s: identity.issue_api_key(s, admin, outlet.id, "收银台", idempotency_key=key),
        lambda s: identity.issue_api_key(s, admin, outlet.id, "收银台", idempotency_key=key))
    assert first_secret is not None and retry_secret is None and retried.id == first.id
    with committed_factory() as s:
        assert s.scalars(select(ApiKey.id).where(ApiKey.outlet_id == outlet.id)).all() == [first.id]


def test_a_clerk_cannot_issue_keys(client, session):
    tree = f.region_tree(session)
    clerk = f.staff(session, "clerk", tree.county)
    response = client.post("/api/v1/admin/outlets/1/api-keys", headers=f.bearer(session, "staff", clerk.id), json={})
    assert response.status_code == 403 and response.json["error"]["code"] == "role_required"


def test_who_am_i_gives_names_a_screen_can_show(client, session):
    """The console shows who is signed in and where, in words, not ids."""
    tree = f.region_tree(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    me = client.get("/api/v1/auth/me", headers=f.bearer(session, "staff", clerk.id)).json
    assert (me["display_name"], me["scope_name"], me["scope_region_id"]) == ("clerk 测试", tree.town_a.name,
                                                                            tree.town_a.id)
    # The level too: whole-ledger checks are for county staff, so the console offers them only there.
    assert me["scope_level"] == "township"
    county = f.staff(session, "auditor", tree.county)
    assert client.get("/api/v1/auth/me", headers=f.bearer(session, "staff", county.id)).json["scope_level"] == "county"
    person = f.participant(session, tree.grid_a, name="周桂芳")
    mine = client.get("/api/v1/auth/me", headers=f.bearer(session, "participant", person.id)).json
    assert (mine["kind"], mine["display_name"], mine["scope_name"], mine["scope_level"]) == ("participant", "周桂芳",
                                                                                            None, None)
