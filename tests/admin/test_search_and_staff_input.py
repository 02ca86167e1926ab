"""What a staff member's search and staff form cannot be used for: rebuilding a masked name
from fragments, or creating a look-alike user with a name that differs by a trailing newline."""
from __future__ import annotations

import uuid

from sqlalchemy import select

from identity.models import AuditEntry, Partner, StaffUser
from tests import factories as f

PASSWORD = "long-enough-password"


def _ids(client, headers: dict[str, str], q: str) -> list[int]:
    return [r["id"] for r in client.get("/api/v1/admin/accounts", query_string={"q": q}, headers=headers).json["items"]]


def test_auditor_cannot_unmask_a_name_by_searching_fragments(client, session):
    """Auditors read 张*梅; if a fragment search matched, searching 秀 (found) and 丽 (not found)
    would give the hidden character away, as phone fragments would give away a masked number."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="张秀梅")
    account = f.account_of(session, person)
    auditor = f.bearer(session, "staff", f.staff(session, "auditor", tree.town_a).id)
    listed = client.get("/api/v1/admin/accounts", query_string={"q": "张秀梅"}, headers=auditor).json["items"]
    assert [r["participant"]["name"] for r in listed if r["id"] == account.id] == ["张*梅"]
    for fragment in ("秀", "丽", "张", "梅", "张秀", "秀梅", "张*梅"):
        assert account.id not in _ids(client, auditor, fragment), fragment
    assert account.id in _ids(client, auditor, f"participant:{person.id}")  # by account code, as before


def test_readers_who_see_names_in_full_still_search_by_fragment(client, session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="张秀梅")
    account = f.account_of(session, person)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    assert account.id in _ids(client, clerk, "秀")
    assert account.id not in _ids(client, clerk, "丽")


def test_staff_with_a_scope_outside_mine_names_scope_region_id(client, session):
    """The 404 points at the body's field, not at `region_id`, which the body does not have."""
    tree = f.region_tree(session)
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.town_a).id)
    r = client.post("/api/v1/admin/staff", headers=admin, json={
        "username": f.unique("clerk"), "display_name": "x", "role": "clerk", "scope_region_id": tree.town_b.id,
        "password": PASSWORD})
    assert r.status_code == 404
    assert set(r.json["error"]["details"]) == {"scope_region_id"}, r.json


def test_staff_username_with_trailing_newline_is_refused(client, session):
    """`$` matches before a final newline: "name\\n" passed the pattern and the exact-match
    uniqueness check, and made a second user that looks like the first."""
    tree = f.region_tree(session)
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    name = f.unique("clerk")
    body = {"username": name, "display_name": "x", "role": "clerk", "scope_region_id": tree.town_a.id,
            "password": PASSWORD}
    assert client.post("/api/v1/admin/staff", headers=admin, json=body).status_code == 201
    for twin in (name + "\n", "\n" + name, name + " "):
        r = client.post("/api/v1/admin/staff", headers=admin, json={**body, "username": twin})
        assert r.status_code == 422 and set(r.json["error"]["details"]) == {"username"}, (twin, r.json)
    assert session.query(StaffUser).filter(StaffUser.username.startswith(name)).count() == 1


def test_partner_code_with_trailing_newline_is_refused(client, session):
    tree = f.region_tree(session)
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    code = f.unique("P")
    r = client.post("/api/v1/admin/partners", headers=admin,
                    json={"code": code + "\n", "name": "惠民超市", "region_id": tree.town_a.id})
    assert r.status_code == 422 and set(r.json["error"]["details"]) == {"code"}, r.json
    assert session.query(Partner).filter(Partner.code.startswith(code)).count() == 0


def test_names_made_of_blanks_are_refused_everywhere_staff_type_one(client, session):
    """A participant, staff member, partner or outlet named "   " (or ideographic spaces) was
    accepted and then shown as nobody in lists, statements and settlements."""
    tree = f.region_tree(session)
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)
    partner = f.shop(session, tree.town_a, outlets=0)[0]
    for url, body, field in (
            ("/api/v1/admin/participants", {"name": "  ", "phone": "13700000001", "region_id": tree.grid_a.id}, "name"),
            ("/api/v1/admin/staff", {"username": f.unique("clerk"), "display_name": "\u3000\u3000", "role": "clerk",
                                     "scope_region_id": tree.town_a.id, "password": PASSWORD}, "display_name"),
            ("/api/v1/admin/partners", {"code": f.unique("P"), "name": " \t ", "region_id": tree.town_a.id}, "name"),
            (f"/api/v1/admin/partners/{partner.id}/outlets", {"name": "   ", "region_id": tree.town_a.id}, "name")):
        refused = client.post(url, headers=admin, json=body)
        assert refused.status_code == 422 and set(refused.json["error"]["details"]) == {field}, (url, refused.json)


def test_a_phone_number_typed_in_full_width_digits_is_found(client, session):
    """A Chinese keyboard types １３９… (full-width): str.isdigit took it for a phone number, but it
    was compared as typed with the stored ASCII digits, so a clerk found nobody, by the whole
    number or its last four digits; the audit log keeps it masked as before."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    account = f.account_of(session, person)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    wide = person.phone.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
    assert account.id in _ids(client, clerk, wide)
    assert account.id in _ids(client, clerk, wide[-4:])
    assert account.id not in _ids(client, clerk, wide[3:9])  # fragments still match nothing
    searched = session.scalars(select(AuditEntry.details).where(AuditEntry.action == "ledger.accounts.search")
                               .order_by(AuditEntry.id.desc()).limit(3)).all()
    assert [d["kind"] for d in searched] == ["phone", "phone_last4", "phone"]
    assert person.phone not in str(searched) and wide not in str(searched)


INVISIBLE = ["\u200b\u200b", "\u3164\u3164", "\u2800\u2800", "\ufeff\ufeff", "\xad\xad", "\u180e\u180e",
             "\u200b \u2060\u3000", "\u202e\u202d", "\ufe0f\ufe0f"]


def test_a_reason_made_only_of_invisible_characters_is_refused(client, session):
    """Zero-width spaces, Hangul fillers, the blank Braille pattern, BOMs, soft hyphens, the
    Mongolian vowel separator: not blanks to `str.strip`, so a deactivation "for" two of them was
    recorded with a reason nobody can read."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    url = f"/api/v1/admin/participants/{person.id}/deactivate"
    for reason in INVISIBLE:
        refused = client.post(url, headers=clerk, json={"reason": reason})
        assert refused.status_code == 422, (ascii(reason), refused.json)
        assert refused.json["error"]["details"] == {"reason": ["请至少写 2 个字，不能只有空白。"]}, ascii(reason)
    assert client.post(url, headers=clerk, json={"reason": "\u200b迁出\u200b"}).status_code == 200  # two in words


def test_names_with_invisible_or_direction_characters_are_refused_and_real_names_pass(client, session):
    """An enrolment named "\\u200b" (nobody) was a 201, and one named "\\u202e梅秀张" (a right-to-
    left override) too: every list then showed 张秀梅, whom a search for 张秀梅 does not find."""
    tree = f.region_tree(session)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    admin = f.bearer(session, "staff", f.staff(session, "admin", tree.county).id)

    def enrol(name: str) -> object:
        return client.post("/api/v1/admin/participants", headers=clerk, json={
            "name": name, "phone": f"137{uuid.uuid4().int % 10**8:08d}", "region_id": tree.grid_a.id})

    hidden = "不能包含不可见字符或文字方向控制符。"
    for name, messages in (("\u200b", ["请至少写 1 个字，不能只有空白。", hidden]), ("\u202e梅秀张", [hidden]),
                           ("张\u200b秀梅", [hidden]), ("张秀梅\u2066", [hidden]), ("\u3164", None), ("\xad张", [hidden])):
        refused = enrol(name)
        assert refused.status_code == 422 and set(refused.json["error"]["details"]) == {"name"}, ascii(name)
        assert messages is None or refused.json["error"]["details"]["name"] == messages, refused.json
    for name in ("张秀梅", "阿依古丽·买买提", "Mary Anne O'Neil", "欧阳 娜娜", "Zoë"):
        assert enrol(name).status_code == 201, name
    person = f.participant(session, tree.grid_a)
    changed = client.patch(f"/api/v1/admin/participants/{person.id}", headers=clerk, json={"name": "\u202e梅秀张"})
    assert changed.status_code == 422 and set(changed.json["error"]["details"]) == {"name"}
    staff = client.post("/api/v1/admin/staff", headers=admin, json={
        "username": f.unique("clerk"), "display_name": "\u200b", "role": "clerk", "scope_region_id": tree.town_a.id,
        "password": PASSWORD})
    assert staff.status_code == 422 and set(staff.json["error"]["details"]) == {"display_name"}
    outlet_of = f.shop(session, tree.town_a, outlets=0)[0]
    outlet = client.post(f"/api/v1/admin/partners/{outlet_of.id}/outlets", headers=admin,
                         json={"name": "惠民\u202e超市", "region_id": tree.town_a.id})
    assert outlet.status_code == 422 and set(outlet.json["error"]["details"]) == {"name"}
