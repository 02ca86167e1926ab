"""Passwords after sign-up: people change their own (the current one required, other sessions
end), and a clerk sets a participant's first password or a forgotten one."""
from __future__ import annotations

from sqlalchemy import select

from identity import services as identity
from identity.models import AuditEntry
from tests import factories as f


def _login(client, phone: str, password: str):
    return client.post("/api/v1/auth/participant/login", json={"phone": phone, "password": password})


def _bearer(response) -> dict[str, str]:
    assert response.status_code == 201, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}


def test_a_participant_changes_their_password_and_their_other_sessions_end(client, session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    phone_session = _bearer(_login(client, person.phone, "pass-word-1"))
    forgotten_tablet = _bearer(_login(client, person.phone, "pass-word-1"))

    def change(current: str, new: str):
        return client.post("/api/v1/auth/password", headers=phone_session,
                           json={"current_password": current, "new_password": new})

    wrong = change("not-my-password", "river-lamp-42")
    assert wrong.status_code == 422 and "current_password" in wrong.json["error"]["details"]
    for weak in ("short", "aaaaaaaaaaaa", f"x{person.phone}x", "pass-word-1"):
        refused = change("pass-word-1", weak)
        assert refused.status_code == 422 and "new_password" in refused.json["error"]["details"], weak
    assert change("pass-word-1", "river-lamp-42").status_code == 204
    assert client.get("/api/v1/me/balance", headers=phone_session).status_code == 200
    assert client.get("/api/v1/me/balance", headers=forgotten_tablet).status_code == 401
    assert _login(client, person.phone, "pass-word-1").status_code == 401
    assert _login(client, person.phone, "river-lamp-42").status_code == 201
    no_token = client.post("/api/v1/auth/password", json={"current_password": "x", "new_password": "river-lamp-43"})
    assert no_token.status_code == 401


def test_a_staff_password_change_is_audited_without_the_password(client, session):
    tree = f.region_tree(session)
    clerk = f.staff(session, "clerk", tree.town_a)
    user = session.get(identity.StaffUser, clerk.id)
    headers = f.login(client, user.username)
    changed = client.post("/api/v1/auth/password", headers=headers,
                          json={"current_password": "long-enough-password", "new_password": "short-9"})
    assert changed.status_code == 422 and "new_password" in changed.json["error"]["details"]
    changed = client.post("/api/v1/auth/password", headers=headers,
                          json={"current_password": "long-enough-password", "new_password": "tea-garden-lantern"})
    assert changed.status_code == 204
    (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.password_change",
                                                        AuditEntry.actor_id == clerk.id)).all()
    assert "tea-garden" not in str(entry.details) and "long-enough" not in str(entry.details)


def test_a_clerk_sets_the_first_password_or_a_forgotten_one(client, session):
    tree = f.region_tree(session)
    newcomer = f.participant(session, tree.grid_a, name="赵玉兰", password=None)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    url = f"/api/v1/admin/participants/{newcomer.id}/password"
    assert _login(client, newcomer.phone, "first-pass-7").status_code == 401  # enrolled without one
    weak = client.post(url, headers=clerk, json={"password": newcomer.phone})
    assert weak.status_code == 422 and "password" in weak.json["error"]["details"]
    assert client.post(url, headers=clerk, json={"password": "first-pass-7"}).status_code == 204
    signed_in = _bearer(_login(client, newcomer.phone, "first-pass-7"))
    assert client.post(url, headers=clerk, json={"password": "second-pass-8"}).status_code == 204  # forgotten
    assert client.get("/api/v1/me/balance", headers=signed_in).status_code == 401
    assert _login(client, newcomer.phone, "second-pass-8").status_code == 201
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "participant.password_set",
                                                       AuditEntry.object_id == str(newcomer.id))
                              .order_by(AuditEntry.id)).all()
    assert [e.details for e in entries] == [{"first": True}, {"first": False}]
    verifier = f.bearer(session, "staff", f.staff(session, "verifier", tree.town_a).id)
    assert client.post(url, headers=verifier, json={"password": "third-pass-9"}).status_code == 403
    elsewhere = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_b).id)
    assert client.post(url, headers=elsewhere, json={"password": "third-pass-9"}).status_code == 404


def test_a_sign_in_with_the_old_password_during_a_change_fails(committed_factory):
    """A sign-in checking the old password while a change commits used to read the old hash and
    open a session after the change had ended all the others; it now waits for the change and
    is refused."""
    import pytest

    from infra.errors import Unauthorized
    from tests.concurrency import while_holding

    with committed_factory() as setup:
        person = f.participant(setup, f.region_tree(setup).grid_a)
        setup.commit()
        phone, person_id = person.phone, person.id
    ttl = __import__("datetime").timedelta(hours=1)

    def change(s):
        token, _expires = identity.issue_token(s, "participant", person_id, ttl)
        actor = identity.participant_principal(s.get(identity.Participant, person_id))
        identity.change_own_password(s, actor, "pass-word-1", "river-lamp-42", keep_token=token)

    def sign_in(s):
        return identity.login_participant(s, phone, "pass-word-1", ttl)

    _done, outcome = while_holding(committed_factory, change, sign_in, hold=0.5)
    assert isinstance(outcome, Unauthorized), outcome
    with committed_factory() as check:
        with pytest.raises(Unauthorized):
            identity.login_participant(check, phone, "pass-word-1", ttl)
        assert identity.login_participant(check, phone, "river-lamp-42", ttl)[0]
