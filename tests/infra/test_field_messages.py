"""Field messages in the reader's language: a form on a phone shows `details` beside each field."""
from __future__ import annotations

import ast
import re
from pathlib import Path

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


# Every message our code writes into `details` by itself, or as an import row's reason: found in
# the source (a `details=` list, a checker's `bad(field, "...")` or `return field, "..."`, a stored
# import error's "reason"), as the reader would see it with each value replaced by "7".
PACKAGES = ("infra", "identity", "ledger", "admin", "scoring", "redemption")
# Calls whose text is no field message: an exception's or catalogue's own message (translated as a
# msgid), an audit or log record, SQL.
NOT_DETAILS = {"gettext", "lazy_gettext", "ngettext", "N_", "audit", "debug", "info", "warning", "error",
               "exception", "text", "execute", "compile", "sub", "match", "search", "fullmatch", "split"}
DESCRIBING = {"description", "summary", "help", "metadata", "doc"}  # OpenAPI and CLI texts


def _exception_call(name: str) -> bool:
    return name.endswith(("Error", "Exception", "Failed", "Conflict")) or name in {
        "NotFound", "Forbidden", "Unauthorized", "Unavailable", "TooLarge", "InsufficientBalance"}


def _text(node: ast.AST) -> str | None:
    """A literal's text; an f-string's or a literal + expression's with "7" for each value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "7" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = _text(node.left)
        return None if left is None else left + (_text(node.right) or "7")
    return None


def _name(call: ast.Call) -> str:
    return call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")


def _sentence(text: str) -> bool:
    return bool(re.match(r"[A-Z0-9\"'(]", text)) and " " in text and text.rstrip().endswith(".")


def messages_in(source: str) -> set[str]:
    tree = ast.parse(source)
    skipped: set[int] = set()
    reasons: set[int] = set()  # a stored import error's "reason", a `details` list's items
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and _text(body[0].value) is not None:
            skipped.add(id(body[0].value))  # a docstring
        if isinstance(node, ast.Call):
            name = _name(node)
            if name in NOT_DETAILS or _exception_call(name):
                quiet = node.args[:1] if _exception_call(name) else node.args
                skipped.update(id(n) for arg in quiet for n in ast.walk(arg))
            for keyword in node.keywords:
                if keyword.arg in DESCRIBING:
                    skipped.update(id(n) for n in ast.walk(keyword.value))
                if keyword.arg == "details":
                    reasons.update(id(n) for n in ast.walk(keyword.value))
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value in DESCRIBING:
                    skipped.update(id(n) for n in ast.walk(value))
                if isinstance(key, ast.Constant) and key.value == "reason":
                    reasons.add(id(value))
        if isinstance(node, (ast.JoinedStr, ast.BinOp)):
            skipped.update(id(n) for n in ast.walk(node) if n is not node)
    found: set[str] = set()
    for node in ast.walk(tree):
        text = _text(node)
        if text is None or id(node) in skipped:
            continue
        if (id(node) in reasons and re.match(r"[A-Z]", text) and " " in text) or _sentence(text):
            found.add(text)
    return found


def detail_messages(root: Path) -> dict[str, str]:
    """message -> where it was written."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if path.name in ("field_messages.py", "openapi.py", "config.py"):  # no field's message
                continue
            for message in messages_in(path.read_text(encoding="utf-8")):
                found.setdefault(message, str(path.relative_to(root)))
    return found


def test_every_fixed_detail_message_in_our_code_is_in_chinese(app):
    """The details our services write themselves (["No such partner in your scope."], a helper's
    `_fail("work_date", "...")`, an import row's reason, and so on) are templates of this module
    too: one added without a template would reach a Chinese reader in English."""
    found = detail_messages(Path(__file__).resolve().parents[2])
    assert len(found) > 100  # the scan still finds them
    assert "The work date cannot be in the future." in found and "Invalid value (7)." in found
    with app.test_request_context(headers={"Accept-Language": "zh"}):
        assert {m: where for m, where in found.items() if localize_message(m) == m} == {}


@pytest.mark.parametrize(("english", "chinese"), [
    ("The work date cannot be in the future.", "工作日期不能晚于今天。"),
    ("Describe the work.", "请填写工作描述。"),
    ("A named participant was not found here.", "所填参与者不在本辖区内或不存在。"),
    ("A mediation needs its case record following the eight steps; missing: ask, help",
     "调解须按八步工作法填写案卷记录，缺少：ask, help"),
    ("PRO-3 counts one 次 per contribution.", "指标 PRO-3 每条工作记录只计 1 次。"),
    ("At most 5000 rows per file.", "每个文件最多 5000 行。"),  # not "At most {n}." with n "5000 rows per file"
    ("One of this rule set's grades: A, AA.", "须为本规则中的等级之一：A, AA。"),  # not "One of {choices}."
    ("kind must be one of award, redemption", "记账类型须为以下之一：award, redemption"),
    ("Revoke the contribution (POST /api/v1/admin/contributions/{id}/revoke) instead.",
     "请改为撤销该工作记录（POST /api/v1/admin/contributions/{id}/revoke）。"),  # its braces are text
])
def test_service_details_without_a_checker_of_their_own_are_in_chinese(app, english, chinese):
    with app.test_request_context(headers={"Accept-Language": "zh"}):
        assert localize_message(english) == chinese
    with app.test_request_context(headers=ENGLISH):
        assert localize_message(english) == english


@pytest.mark.parametrize(("stored", "chinese"), [
    ("Must not contain control characters.", "不能包含控制字符。"),
    ("The import stopped on an unexpected error (OperationalError); nothing was imported.",
     "导入因意外错误中断（OperationalError），未导入任何记录。"),
    ("Began on 2026-11-01; a start already passed stays.", "已于 2026-11-01 开始；已过的开始日期不能更改。"),
    ("Not a text CSV: save it as CSV (UTF-8 or the Chinese default, GBK).; Use YYYY-MM-DD.",
     "不是文本格式的 CSV：请另存为 CSV（UTF-8 或中文默认的 GBK 编码）。; 请按 YYYY-MM-DD 填写。"),
    ("You cannot record points for yourself.", "不能为本人登记积分。"),  # a refusal's own message
    ("数量 x", "数量 x"),  # nothing wrote it: as it is
])
def test_an_import_errors_stored_reasons_are_read_in_the_readers_language(app, stored, chinese):
    from scoring.schemas import import_error

    error = {"line": 3, "field": "description", "reason": stored}
    with app.test_request_context(headers={"Accept-Language": "zh"}):
        assert import_error(error) == {**error, "reason": chinese}
    with app.test_request_context(headers=ENGLISH):
        assert import_error(error) == error


def test_a_service_detail_reaches_the_reader_in_chinese(client, session):
    from identity import services as identity

    tree = f.region_tree(session)
    _partner, (outlet,), _desks = f.shop(session, tree.town_a, outlets=1)
    desk = {"X-Api-Key": identity.issue_api_key(session, f.staff(session, "admin", tree.county), outlet.id)[0]}
    refused = client.post("/api/v1/outlet/lookup", headers=desk, json={"code": "00000000"})
    assert refused.status_code == 404 and refused.json["error"]["details"] == {"code": ["无效、已过期或已使用。"]}
    english = client.post("/api/v1/outlet/lookup", headers={**desk, **ENGLISH}, json={"code": "00000000"})
    assert english.json["error"]["details"] == {"code": ["Unknown, expired or already used."]}
