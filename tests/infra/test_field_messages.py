"""Field messages in the reader's language: a form on a phone shows `details` beside each field."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError, fields, validate

from infra.field_messages import localize_message
from tests import factories as f
from tests.schemas import load_schemas

ENGLISH = {"Accept-Language": "en"}


def test_a_sign_in_with_fields_missing_names_them_in_chinese_and_in_english(client):
    chinese = client.post("/api/v1/auth/participant/login", json={})
    assert chinese.status_code == 422
    assert chinese.json["error"]["details"] == {"phone": ["此项为必填。"], "password": ["此项为必填。"]}
    english = client.post("/api/v1/auth/participant/login", json={}, headers=ENGLISH)
    assert english.json["error"]["details"]["phone"] == ["Missing data for required field."]


def test_unknown_fields_wrong_types_and_formats_are_told_in_chinese(client):
    response = client.post("/api/v1/auth/participant/login", json={"phone": 13900000000, "password": "x", "pin": 1})
    assert response.json["error"]["details"] == {"phone": ["不是有效的文本。"], "pin": ["未知字段。"]}
    wrong_phone = client.post("/api/v1/auth/participant/login", json={"phone": "12345", "password": "x"})
    assert wrong_phone.json["error"]["details"]["phone"] == ["请填写大陆手机号：以 1 开头的 11 位数字。"]
    not_json = client.post("/api/v1/auth/participant/login", data="{oops", content_type="application/json")
    assert not_json.json["error"]["details"] == {"json": ["请求内容不是有效的 JSON。"]}


def test_a_limit_out_of_range_keeps_its_bounds_in_either_language(client, session):
    tree = f.region_tree(session)
    headers = f.bearer(session, "participant", f.participant(session, tree.grid_a).id)
    chinese = client.get("/api/v1/me/statement?limit=1000", headers=headers)
    assert chinese.json["error"]["details"] == {"limit": ["须在 1 到 100 之间。"]}
    english = client.get("/api/v1/me/statement?limit=1000", headers={**headers, **ENGLISH})
    assert english.json["error"]["details"] == {"limit": ["Must be between 1 and 100."]}


@pytest.mark.parametrize(("english", "chinese"), [
    ("Longer than maximum length 100.", "超过最大长度 100。"),
    ("Must be greater than or equal to 1.", "不能小于 1。"),
    ("Must be less than or equal to 5.", "不能大于 5。"),
    ("Must be one of: red, orange.", "须为以下之一：red, orange。"),
    ("Write at least 2 characters, not only blanks.", "请至少写 2 个字，不能只有空白。"),
    ("Balance 3 is less than 5.", "余额 3 少于 5。"),
    ("Something no template wrote.", "Something no template wrote."),  # left as it is
])
def test_templated_messages_keep_their_values(app, english, chinese):
    with app.test_request_context(headers={"Accept-Language": "zh"}):
        assert localize_message(english) == chinese
    with app.test_request_context(headers=ENGLISH):
        assert localize_message(english) == (english if chinese == english else localize_message(english))


def _samples(message: str) -> str:
    return message.format(input="x", min=1, max=9, equal=3, choices="a, b", obj_type="datetime", other="y",
                          awareness="aware", values="a", min_op="greater than or equal to",
                          max_op="less than or equal to").format(min=1, max=9)


def _validator_messages(validator: validate.Validator) -> set[str]:
    """What a validator says to the values that fail it: bounds either side, an empty, an
    overlong and a blank text, a value no pattern or choice allows, a direction control."""
    probes: list[object] = ["", " " * 3, "x" * 5000, "\uffff-none-of-these", "\u202e"]
    if isinstance(validator, validate.Range):
        probes = [bound + step for bound, step in ((validator.min, -1), (validator.max, 1)) if bound is not None]
    found: set[str] = set()
    for value in probes:
        try:
            validator(value)
        except ValidationError as exc:
            found.update(exc.messages if isinstance(exc.messages, list) else [])
        except TypeError:
            pass
    return found


def test_every_message_our_input_schemas_can_give_is_in_chinese(app):
    """Guards a marshmallow upgrade that rewords a message, and a new field type or validator
    whose messages no template covers: each message our schemas' fields and validators can
    write must come out in Chinese."""
    messages: set[str] = {fields.Field.default_error_messages["required"], "Unknown field.", "Invalid JSON body."}
    for schema in load_schemas():
        for field in schema().fields.values():
            for each in filter(None, (field, getattr(field, "inner", None))):
                messages.update(_samples(m) for m in each.error_messages.values() if isinstance(m, str))
                for validator in each.validators:
                    messages |= _validator_messages(validator)
    with app.test_request_context(headers={"Accept-Language": "zh"}):
        untranslated = {m for m in messages if localize_message(m) == m}
    assert untranslated == set()


def test_every_fixed_detail_message_in_our_code_is_in_chinese(app):
    """The details our services write themselves (["No such partner in your scope."], and so on)
    are templates of this module too: one added without a template would reach a Chinese reader
    in English."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found: set[str] = set()
    for package in ("infra", "identity", "ledger", "admin", "scoring", "redemption"):
        for path in (root / package).rglob("*.py"):
            found.update(re.findall(r'details=\{[^}]*?\[\s*"([A-Z][^"{}]*)"\s*\]', path.read_text(), re.DOTALL))
    assert len(found) > 20  # the scan still finds them
    with app.test_request_context(headers={"Accept-Language": "zh"}):
        assert {m for m in found if localize_message(m) == m} == set()


def test_a_service_detail_reaches_the_reader_in_chinese(client, session):
    from identity import services as identity

    tree = f.region_tree(session)
    _partner, (outlet,), _desks = f.shop(session, tree.town_a, outlets=1)
    desk = {"X-Api-Key": identity.issue_api_key(session, f.staff(session, "admin", tree.county), outlet.id)[0]}
    refused = client.post("/api/v1/outlet/lookup", headers=desk, json={"code": "00000000"})
    assert refused.status_code == 404 and refused.json["error"]["details"] == {"code": ["无效、已过期或已使用。"]}
    english = client.post("/api/v1/outlet/lookup", headers={**desk, **ENGLISH}, json={"code": "00000000"})
    assert english.json["error"]["details"] == {"code": ["Unknown, expired or already used."]}
