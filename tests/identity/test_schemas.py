"""Identity input: a mobile number is exactly 11 ASCII digits, so one number cannot be enrolled
twice by appending a newline or typing it in full-width digits."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError

from identity.schemas import PHONE
from tests import factories as f


@pytest.mark.parametrize("suffix_or_form", ["\n", "\r\n", " ", "full-width"])
def test_enrol_refuses_a_phone_that_only_looks_like_an_existing_one(client, session, suffix_or_form):
    tree = f.region_tree(session)
    clerk = f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id)
    person = f.participant(session, tree.grid_a)
    if suffix_or_form == "full-width":
        phone = person.phone[0] + "".join(chr(ord(c) + 0xFEE0) for c in person.phone[1:])  # ０-９
    else:
        phone = person.phone + suffix_or_form
    r = client.post("/api/v1/admin/participants", headers=clerk,
                    json={"name": "王芳", "phone": phone, "region_id": tree.grid_a.id})
    assert r.status_code == 422 and set(r.json["error"]["details"]) == {"phone"}, (r.status_code, r.json)


def test_the_phone_pattern_takes_exactly_eleven_ascii_digits():
    assert PHONE("13800138000") == "13800138000"
    for bad in ("13800138000\n", "1380013800", "138001380000", "23800138000", "1３800138000", "١٣800138000"):
        with pytest.raises(ValidationError):
            PHONE(bad)
