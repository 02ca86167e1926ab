"""An id sent in a body or query string that names nothing the caller may see is a 404 naming
that field (not another one, not none), the same whether the object is missing or out of scope."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests import factories as f

MISSING = 9_000_000_000
ID = "{id}"  # where the case's id goes
YEAR = 2025


@dataclass
class World:
    ids: dict[str, int]  # out of scope for the caller: posting, person, town, partner
    own_region: int
    outlet: int
    headers: dict[str, dict[str, str]]  # by role, all scoped to the other township


@pytest.fixture
def world(session: Session) -> World:
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    posting = f.award(session, f.account_of(session, person).id, 5)
    partner, outlets, _desks = f.shop(session, tree.town_a, outlets=1)
    headers = {role: f.bearer(session, "staff", f.staff(session, role, tree.town_b).id)
               for role in ("admin", "clerk", "verifier")}
    return World(ids={"posting": posting.posting_id, "person": person.id, "town": tree.town_a.id,
                      "partner": partner.id}, own_region=tree.village_b.id, outlet=outlets[0].id, headers=headers)


def _staff(**overrides: Any) -> dict[str, Any]:
    return {"username": "nf.clerk", "display_name": "x", "role": "clerk", "scope_region_id": ID,
            "password": "long-enough-password", **overrides}


CASES = [  # role, method, url, query, body, the object the id is for, the field
    ("clerk", "POST", "/api/v1/admin/reversals", None, {"posting_id": ID, "reason": "误发积分"}, "posting", "posting_id"),
    ("clerk", "POST", "/api/v1/admin/adjustments", None, {"participant_id": ID, "amount": 5, "reason": "补录"},
     "person", "participant_id"),
    ("admin", "POST", "/api/v1/admin/staff", None, _staff(), "town", "scope_region_id"),
    ("admin", "POST", "/api/v1/admin/staff", None, _staff(scope_region_id="{own}", participant_id=ID),
     "person", "participant_id"),
    ("verifier", "GET", "/api/v1/admin/honours/candidates",
     {"township_id": ID, "year": YEAR, "honour": "loan_priority"}, None, "town", "township_id"),
    ("verifier", "POST", "/api/v1/admin/honours/nominations", None,
     {"year": YEAR, "honour": "loan_priority", "participant_id": ID}, "person", "participant_id"),
    ("clerk", "GET", "/api/v1/admin/settlement", {"partner_id": ID, "month": "2025-01"}, None, "partner", "partner_id"),
    ("admin", "POST", "/api/v1/admin/scenarios", None,
     {"code": "NF-1", "family": "shopping", "name_zh": "大米", "name_en": "Rice", "partner_id": ID,
      "outlet_ids": ["{outlet}"], "kind": "spend", "points_cost": 10, "valid_from": "2025-01-01"}, "partner", "partner_id"),
]


def _fill(value: Any, target: int, world: World) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, target, world) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, target, world) for v in value]
    return {ID: target, "{own}": world.own_region, "{outlet}": world.outlet}.get(value, value) \
        if isinstance(value, str) else value


@pytest.mark.parametrize(("role", "method", "url", "query", "body", "kind", "field"), CASES,
                         ids=[f"{c[2].rsplit('/', 1)[-1]}-{c[6]}" for c in CASES])
def test_an_id_i_cannot_see_is_a_404_naming_its_field(client, world, role, method, url, query, body, kind, field):
    answers = []
    for target in (MISSING, world.ids[kind]):
        r = client.open(url, method=method, headers=world.headers[role], query_string=_fill(query, target, world),
                        json=_fill(body, target, world))
        assert r.status_code == 404, (target, r.status_code, r.json)
        assert set(r.json["error"]["details"]) == {field}, r.json
        answers.append(r.json)
    assert answers[0] == answers[1]  # out of scope reads exactly as missing
