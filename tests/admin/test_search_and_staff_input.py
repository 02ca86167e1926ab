"""What a staff member's search and staff form cannot be used for: rebuilding a masked name
from fragments, or creating a look-alike user with a name that differs by a trailing newline."""
from __future__ import annotations

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