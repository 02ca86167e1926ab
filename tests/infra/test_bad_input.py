"""Bad input is the client's mistake: a 4xx naming the field (a 404 for an id in the path), never
a 500, and nothing written. Numbers past PostgreSQL's INTEGER/BIGINT, moments whose conversion
to UTC leaves the calendar, and control characters (NUL above all) in any string."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from marshmallow import fields, validate
from sqlalchemy import text
from sqlalchemy.orm import Session

from identity import services as identity
from infra.api import INT4_MAX, INT8_MAX, Integer, UtcDateTime
from infra.clock import local_date
from infra.db import Base
from tests import factories as f
from tests.schemas import load_schemas

HUGE = 2**64 + 5
BIG = INT8_MAX + 1  # one past BIGINT
INT4_PAST = INT4_MAX + 1  # one past INTEGER
EARLY = "0001-01-01T00:00:00+14:00"  # year 0 in UTC
LATE = "9999-12-31T23:59:59-12:00"  # year 10000 in UTC


@dataclass
class World:
    participant: dict[str, str]
    staff: dict[str, str]
    outlet: dict[str, str]
    public: dict[str, str]
    account_id: int
    person_id: int
    scenario_id: int
    partner_id: int
    outlet_id: int
    code: str


@pytest.fixture
def world(session: Session) -> World:
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    account = f.account_of(session, person)
    f.award(session, account.id, 50)
    partner, outlets, _desks = f.shop(session, tree.town_a, outlets=1)
    rice = f.scenario(session, partner, outlets)
    admin = f.staff(session, "admin", tree.county)
    key, _ = identity.issue_api_key(session, admin, outlets[0].id)
    code = f.code_for(session, person)
    session.commit()
    return World(participant=f.bearer(session, "participant", person.id), staff=f.bearer(session, "staff", admin.id),
                 outlet={"X-Api-Key": key}, public={}, account_id=account.id, person_id=person.id,
                 scenario_id=rice.id, partner_id=partner.id, outlet_id=outlets[0].id, code=code)


def _row_counts(session: Session) -> dict[str, int]:
    """Rows in every table: a refused request must leave them all as they were."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    counts = session.execute(text("SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}")' for t in tables))).one()
    return dict(zip(tables, counts))


def _send(client: Any, world: World, who: str, method: str, url: str, *, json: Any = None,
          query: dict[str, Any] | None = None) -> Any:
    """A str body is sent as it is: JSON text that a client library would not write (a lone surrogate)."""
    body = {"data": json, "content_type": "application/json"} if isinstance(json, str) else {"json": json}
    return client.open(url.format(w=world), method=method, headers=getattr(world, who), query_string=query, **body)


def _refused(client: Any, session: Session, world: World, who: str, method: str, url: str, status: int,
             *, json: Any = None, query: dict[str, Any] | None = None) -> dict[str, Any]:
    before = _row_counts(session)
    response = _send(client, world, who, method, url, json=json, query=query)
    assert response.status_code == status, (url, response.status_code, response.json)
    assert response.is_json and "error" in response.json
    assert _row_counts(session) == before
    return response.json["error"]


# --- ids in the path: past BIGINT (or INTEGER for a rule version), no route matches: 404 -------

PATH_IDS = [
    ("participant", "GET", f"/api/v1/me/contributions/{HUGE}"),
    ("participant", "POST", f"/api/v1/notices/{BIG}/objections"),
    ("participant", "GET", f"/api/v1/contributions/{HUGE}/evidence/{HUGE}"),
    ("staff", "GET", f"/api/v1/admin/accounts/{HUGE}"),
    ("staff", "GET", f"/api/v1/admin/accounts/{BIG}/statement"),
    ("staff", "GET", f"/api/v1/admin/postings/{HUGE}"),
    ("staff", "GET", f"/api/v1/admin/participants/{HUGE}"),
    ("staff", "POST", f"/api/v1/admin/approvals/{HUGE}/decision"),
    ("staff", "PATCH", f"/api/v1/admin/scenarios/{HUGE}"),
    ("staff", "POST", f"/api/v1/admin/staff/{HUGE}/deactivate"),
    ("staff", "POST", f"/api/v1/admin/contributions/{HUGE}/verify"),
    ("staff", "GET", f"/api/v1/admin/rules/{INT4_PAST}"),
    ("staff", "DELETE", f"/api/v1/admin/api-keys/{'9' * 5000}"),
    ("outlet", "POST", f"/api/v1/outlet/redemptions/{HUGE}/refunds"),
    ("outlet", "POST", f"/api/v1/outlet/holds/{HUGE}/capture"),
    ("outlet", "POST", f"/api/v1/outlet/holds/{HUGE}/void"),
]


@pytest.mark.parametrize(("who", "method", "url"), PATH_IDS)
def test_an_id_past_the_column_in_the_path_is_not_found(client, session, world, who, method, url):
    error = _refused(client, session, world, who, method, url, 404, json={})
    assert error["code"] == "not_found"


def test_the_largest_bigint_in_the_path_is_an_ordinary_miss(client, session, world):
    error = _refused(client, session, world, "staff", "GET", f"/api/v1/admin/accounts/{INT8_MAX}", 404)
    assert error["code"] == "account_not_found"


# --- numbers in the query string or the body: 422 naming the field ----------------------------

NUMBERS = [
    ("participant", "GET", "/api/v1/me/statement", {"before": HUGE}, None, "before"),
    ("participant", "GET", "/api/v1/me/contributions", {"after": BIG}, None, "after"),
    ("participant", "POST", "/api/v1/me/contributions", None,
     {"indicator_code": "INF-1", "work_date": "2025-01-02", "description": "发现纠纷苗头并上报",
      "members": [{"participant_id": HUGE}]}, "members"),
    ("public", "GET", "/api/v1/scenarios", {"partner_id": HUGE}, None, "partner_id"),
    ("staff", "GET", "/api/v1/admin/audit", {"actor_id": HUGE}, None, "actor_id"),
    ("staff", "GET", "/api/v1/admin/audit", {"before": BIG}, None, "before"),
    ("staff", "GET", "/api/v1/admin/accounts", {"region_id": HUGE}, None, "region_id"),
    ("staff", "GET", "/api/v1/admin/contributions", {"after": HUGE}, None, "after"),
    ("staff", "GET", "/api/v1/admin/settlement", {"partner_id": HUGE, "month": "2025-01"}, None, "partner_id"),
    ("staff", "GET", "/api/v1/admin/honours/candidates",
     {"township_id": HUGE, "year": 2025, "honour": "loan_priority"}, None, "township_id"),
    ("staff", "POST", "/api/v1/admin/adjustments", None,
     {"participant_id": HUGE, "amount": 5, "reason": "补录积分"}, "participant_id"),
    ("staff", "POST", "/api/v1/admin/reversals", None, {"posting_id": BIG, "reason": "录入错误"}, "posting_id"),
    ("staff", "POST", "/api/v1/admin/contributions/verify", None, {"contribution_ids": [1, HUGE]}, "contribution_ids"),
    ("staff", "POST", "/api/v1/admin/rules", None, {"from_version": INT4_PAST}, "from_version"),
    ("staff", "POST", "/api/v1/admin/honours/nominations", None,
     {"year": 2025, "honour": "loan_priority", "participant_id": HUGE}, "participant_id"),
    ("staff", "POST", "/api/v1/admin/participants", None,
     {"name": "王五", "phone": "13900000000", "region_id": HUGE}, "region_id"),
    ("outlet", "POST", "/api/v1/outlet/redemptions", None,
     {"code": "{w.code}", "scenario_id": HUGE, "idempotency_key": "pos-huge-01"}, "scenario_id"),
    ("outlet", "POST", "/api/v1/outlet/holds", None,
     {"code": "{w.code}", "scenario_id": BIG, "idempotency_key": "hold-huge-01"}, "scenario_id"),
]


def _scenario(**overrides: Any) -> dict[str, Any]:
    body = {"code": "BIG-1", "family": "shopping", "name_zh": "大米", "name_en": "Rice", "partner_id": "{w.partner_id}",
            "outlet_ids": ["{w.outlet_id}"], "kind": "spend", "points_cost": 10, "valid_from": "2025-01-01"}
    body.update(overrides)
    return body


SCENARIOS = [
    (_scenario(yuan_value_fen=INT4_PAST), "yuan_value_fen"),
    (_scenario(limit_day=HUGE), "limit_day"),
    (_scenario(total_quota=INT4_PAST), "total_quota"),
    (_scenario(outlet_ids=[HUGE]), "outlet_ids"),
    (_scenario(partner_id=HUGE), "partner_id"),
]


def _fill(value: Any, world: World) -> Any:
    """The world's ids put into a body written before the world existed."""
    if isinstance(value, str) and value.startswith("{w."):
        filled = value.format(w=world)
        return int(filled) if filled.isdigit() and value != "{w.code}" else filled
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    return value


@pytest.mark.parametrize(("who", "method", "url", "query", "body", "field"), NUMBERS)
def test_a_number_past_the_column_is_refused_naming_the_field(client, session, world, who, method, url, query,
                                                              body, field):
    error = _refused(client, session, world, who, method, url, 422, json=_fill(body, world), query=query)
    assert error["code"] == "validation_failed"
    assert field in error["details"]


@pytest.mark.parametrize(("body", "field"), SCENARIOS)
def test_a_scenario_with_a_number_past_its_column_is_refused(client, session, world, body, field):
    error = _refused(client, session, world, "staff", "POST", "/api/v1/admin/scenarios", 422, json=_fill(body, world))
    assert set(error["details"]) == {field}


def test_a_scenario_patch_past_int4_is_refused(client, session, world):
    error = _refused(client, session, world, "staff", "PATCH", f"/api/v1/admin/scenarios/{world.scenario_id}", 422,
                     json={"limit_month": INT4_PAST, "yuan_value_fen": HUGE})
    assert set(error["details"]) == {"limit_month", "yuan_value_fen"}


def test_the_largest_values_that_fit_are_still_accepted(client, session, world):
    statement = _send(client, world, "participant", "GET", "/api/v1/me/statement", query={"before": INT8_MAX})
    assert statement.status_code == 200 and len(statement.json["items"]) == 1
    audit = _send(client, world, "staff", "GET", "/api/v1/admin/audit", query={"actor_id": 0})
    assert audit.status_code == 200  # 0 is the system's id
    created = _send(client, world, "staff", "POST", "/api/v1/admin/scenarios",
                    json=_fill(_scenario(yuan_value_fen=INT4_MAX, total_quota=INT4_MAX), world))
    assert created.status_code == 201, created.json


# --- moments: converted to UTC while loading, so year 0 or 10000 is the field's error --------

MOMENTS = [
    ("participant", "GET", "/api/v1/me/balance", {"at": EARLY}, "at"),
    ("participant", "GET", "/api/v1/me/balance", {"at": LATE}, "at"),
    ("participant", "GET", "/api/v1/me/statement", {"since": "0001-01-01T00:00:00+01:00"}, "since"),
    ("participant", "GET", "/api/v1/me/statement", {"until": LATE}, "until"),
    ("staff", "GET", "/api/v1/admin/audit", {"since": EARLY}, "since"),
    ("staff", "GET", "/api/v1/admin/audit", {"until": LATE}, "until"),
    ("staff", "GET", "/api/v1/admin/accounts/{w.account_id}", {"at": LATE}, "at"),
    ("staff", "GET", "/api/v1/admin/accounts/{w.account_id}/statement", {"since": EARLY}, "since"),
]


@pytest.mark.parametrize(("who", "method", "url", "query", "field"), MOMENTS)
def test_a_moment_outside_the_calendar_in_utc_is_refused_naming_the_field(client, session, world, who, method, url,
                                                                          query, field):
    error = _refused(client, session, world, who, method, url, 422, query=query)
    assert set(error["details"]) == {field}


def test_the_calendars_ends_in_utc_are_still_accepted(client, session, world):
    # A balance is not asked for a moment still to come (a 422 naming `at`): the calendar's far
    # end is tried on the statement's `until`.
    statement = _send(client, world, "participant", "GET", "/api/v1/me/statement",
                      query={"until": "9999-12-31T23:59:59Z"})
    assert statement.status_code == 200, statement.json
    for at in ("0001-01-01T00:00:00+00:00", "2025-06-01T08:00:00+08:00"):
        response = _send(client, world, "participant", "GET", "/api/v1/me/balance", query={"at": at})
        assert response.status_code == 200, (at, response.json)
    assert response.json["as_of"].startswith("2025-06-01T00:00:00")  # loaded as UTC


# --- fractions: whole numbers only, never truncated --------------------------------------------

def _contribution(**overrides: Any) -> dict[str, Any]:
    body = {"indicator_code": "PRO-3", "work_date": local_date().isoformat(), "description": "入户宣讲政策",
            "idempotency_key": "report-fraction-01"}
    body.update(overrides)
    return body


FRACTIONS = [
    ("participant", "POST", "/api/v1/me/contributions", None, _contribution(quantity=2.5), "quantity"),
    ("participant", "POST", "/api/v1/me/contributions", None,
     _contribution(members=[{"participant_id": "{w.person_id}", "share": 1.5}]), "members"),
    ("participant", "GET", "/api/v1/me/contributions", {"limit": "2.5"}, None, "limit"),
    ("participant", "GET", "/api/v1/me/statement", {"limit": "7.99"}, None, "limit"),
    ("participant", "GET", "/api/v1/notices", {"limit": "1e2"}, None, "limit"),
    ("staff", "GET", "/api/v1/admin/audit", {"limit": "10.0"}, None, "limit"),
    ("staff", "GET", "/api/v1/admin/honours/candidates",
     {"township_id": 1, "year": "2025.5", "honour": "loan_priority"}, None, "year"),
    ("staff", "POST", "/api/v1/admin/adjustments", None,
     {"participant_id": "{w.person_id}", "amount": 5.5, "reason": "补录积分"}, "amount"),
    ("staff", "POST", "/api/v1/admin/honours/nominations", None,
     {"year": 2025.5, "honour": "loan_priority", "participant_id": "{w.person_id}"}, "year"),
    ("staff", "POST", "/api/v1/admin/contributions/verify", None, {"contribution_ids": [1.5]}, "contribution_ids"),
    ("staff", "POST", "/api/v1/admin/scenarios", None, _scenario(points_cost=3.5), "points_cost"),
    ("staff", "POST", "/api/v1/admin/scenarios", None, _scenario(yuan_value_fen=99.9), "yuan_value_fen"),
    ("staff", "POST", "/api/v1/admin/scenarios", None, _scenario(limit_month=2.5), "limit_month"),
    ("staff", "POST", "/api/v1/admin/scenarios", None, _scenario(total_quota=10.5), "total_quota"),
    ("staff", "PATCH", "/api/v1/admin/scenarios/{w.scenario_id}", None, {"limit_day": 1.2}, "limit_day"),
    ("outlet", "POST", "/api/v1/outlet/holds", None,
     {"code": "{w.code}", "scenario_id": "{w.scenario_id}", "points": 7.99, "idempotency_key": "hold-frac-01"},
     "points"),
    ("outlet", "POST", "/api/v1/outlet/redemptions", None,
     {"code": "{w.code}", "scenario_id": 1.0, "idempotency_key": "pos-frac-01"}, "scenario_id"),
    ("outlet", "POST", "/api/v1/outlet/redemptions/1/refunds", None,
     {"points": 2.9, "reason": "退货退款", "idempotency_key": "ref-frac-01"}, "points"),
    ("outlet", "POST", "/api/v1/outlet/redemptions", None,
     {"code": "{w.code}", "scenario_id": True, "idempotency_key": "pos-frac-02"}, "scenario_id"),
]


@pytest.mark.parametrize(("who", "method", "url", "query", "body", "field"), FRACTIONS)
def test_a_fraction_is_refused_naming_the_field_not_cut_to_a_whole_number(client, session, world, who, method, url,
                                                                         query, body, field):
    """Regression: marshmallow's default Integer truncates, so 2.9 points were refunded as 2, a
    hold of 7.99 held 7 and a share of 1.5 counted as 1. Every integer we load is whole or a 422
    naming its field, in the reader's language; nothing is written."""
    world.outlet["Accept-Language"] = world.staff["Accept-Language"] = world.participant["Accept-Language"] = "zh"
    error = _refused(client, session, world, who, method, url.format(w=world), 422, json=_fill(body, world),
                     query=query)
    assert error["code"] == "validation_failed" and field in error["details"]
    assert "必须是整数。" in str(error["details"][field])


def test_query_string_numbers_still_load_from_their_text(client, session, world):
    """Every value in a query string is text: a whole number written in digits still loads."""
    for who, url, query in (("participant", "/api/v1/me/contributions", {"limit": "5", "after": "99"}),
                            ("participant", "/api/v1/me/statement", {"limit": "3"}),
                            ("participant", "/api/v1/notices", {"limit": "+2"}),
                            ("staff", "/api/v1/admin/audit", {"limit": "10", "actor_id": "0"})):
        response = _send(client, world, who, "GET", url, query=query)
        assert response.status_code == 200, (url, response.json)
    page = _send(client, world, "participant", "GET", "/api/v1/me/statement", query={"limit": "1"})
    assert len(page.json["items"]) == 1


def test_a_whole_number_in_a_json_body_is_taken_as_it_is(client, session, world):
    created = _send(client, world, "staff", "POST", "/api/v1/admin/scenarios",
                    json=_fill(_scenario(code="WHOLE-1", points_cost=12, limit_month=3), world))
    assert created.status_code == 201, created.json
    assert created.json["points_cost"] == 12 and created.json["limit_month"] == 3


def test_digits_as_text_in_a_json_body_are_refused_naming_the_field(client, session, world):
    """Regression: the field that reads a query string's digits read them in JSON bodies too, so
    `"amount": "+5"` posted an adjustment where a number was required. Text is a number only in a
    query string or form, where every value is text."""
    before = _row_counts(session)
    for who, url, body, field in (
            ("staff", "/api/v1/admin/adjustments", {"participant_id": world.person_id, "amount": "+5",
                                                    "reason": "补录积分"}, "amount"),
            ("staff", "/api/v1/admin/adjustments", {"participant_id": str(world.person_id), "amount": 5,
                                                    "reason": "补录积分"}, "participant_id"),
            ("staff", "/api/v1/admin/scenarios", _fill(_scenario(code="TEXT-1", points_cost="12"), world),
             "points_cost")):
        refused = _send(client, world, who, "POST", url, json=body)
        assert refused.status_code == 422, (url, refused.json)
        assert set(refused.json["error"]["details"]) == {field}, refused.json
    assert _row_counts(session) == before


# --- control characters in any string: 422 naming the field ----------------------------------

TEXTS = [
    ("public", "POST", "/api/v1/auth/staff/login", None, {"username": "a\x00b", "password": "x"}, "username"),
    ("public", "POST", "/api/v1/auth/staff/login", None, r'{"username": "admin", "password": "a\ud800"}', "password"),
    ("public", "POST", "/api/v1/auth/participant/login", None, {"phone": "1390000\x000000", "password": "x"}, "phone"),
    ("participant", "POST", "/api/v1/me/contributions", None,
     {"indicator_code": "INF-1", "work_date": "2025-01-02", "description": "发现纠纷\x00苗头"}, "description"),
    ("participant", "POST", "/api/v1/me/contributions", None,
     {"indicator_code": "INF-1", "work_date": "2025-01-02", "description": "发现纠纷苗头", "incident_ref": "ab\x00c"},
     "incident_ref"),
    ("participant", "POST", "/api/v1/me/contributions", None,
     {"indicator_code": "MED-1", "work_date": "2025-01-02", "description": "调解邻里纠纷",
      "case_record": {"look": "看\x1b[31m"}}, "case_record"),
    ("participant", "POST", "/api/v1/notices/1/objections", None, {"text": "不同意\x00此事"}, "text"),
    ("staff", "GET", "/api/v1/admin/accounts", {"q": "a\x00b"}, None, "q"),
    ("staff", "GET", "/api/v1/admin/audit", {"action": "a\x00b"}, None, "action"),
    ("staff", "GET", "/api/v1/admin/audit", {"object_id": "\x7f"}, None, "object_id"),
    ("staff", "POST", "/api/v1/admin/adjustments", None,
     {"participant_id": "{w.person_id}", "amount": 5, "reason": "补录\x00积分"}, "reason"),
    ("staff", "POST", "/api/v1/admin/scenarios", None, _scenario(name_zh="大\x00米"), "name_zh"),
    ("outlet", "POST", "/api/v1/outlet/redemptions/1/refunds", None,
     {"reason": "退\x00货", "idempotency_key": "ref-nul-001"}, "reason"),
    ("outlet", "POST", "/api/v1/outlet/redemptions", None,
     {"code": "{w.code}", "scenario_id": "{w.scenario_id}", "idempotency_key": "pos-\x00-000001"}, "idempotency_key"),
]


@pytest.mark.parametrize(("who", "method", "url", "query", "body", "field"), TEXTS)
def test_a_control_character_is_refused_naming_the_field(client, session, world, who, method, url, query, body,
                                                         field):
    error = _refused(client, session, world, who, method, url, 422, json=_fill(body, world), query=query)
    assert error["code"] == "validation_failed"
    assert field in error["details"], error


def test_a_refused_login_name_is_a_422_and_records_nothing(client, session, world):
    error = _refused(client, session, world, "public", "POST", "/api/v1/auth/staff/login", 422,
                     json={"username": "admin\x00", "password": "long-enough-password"})
    assert error["details"] == {"username": ["不能包含控制字符。"]}


def test_nested_errors_point_at_the_string(client, session, world):
    error = _refused(client, session, world, "staff", "PATCH", "/api/v1/admin/rules/1", 422,
                     json={"honours": {"loan_priority": {"note": ["ok", "bad\x00"]}, "k\x00": 1}})
    assert error["details"] == {"honours": {"loan_priority": {"note": {"1": ["不能包含控制字符。"]}},
                                            "k\x00": ["不能包含控制字符。"]}}


def test_tab_newline_and_carriage_return_are_still_text(client, session, world):
    response = _send(client, world, "participant", "POST", "/api/v1/me/contributions", json={
        "indicator_code": "INF-1", "work_date": local_date().isoformat(), "description": "发现纠纷苗头\r\n\t并上报",
        "conflict_item": "C2-01", "warning_colour": "yellow", "idempotency_key": "report-text-0001"})
    assert response.status_code == 201, response.json
    assert response.json["description"] == "发现纠纷苗头\r\n\t并上报"


# --- bodies json.loads refuses in other ways than a syntax error: 400 ------------------------

@pytest.mark.parametrize("body", ['{"username": ' + "9" * 5000 + "}", "[" * 100000 + "]" * 100000],
                         ids=["5000-digit number", "nested past the stack"])
@pytest.mark.parametrize(("who", "url"), [("public", "/api/v1/auth/staff/login"), ("outlet", "/api/v1/outlet/lookup"),
                                          ("staff", "/api/v1/admin/adjustments")])
def test_a_body_json_cannot_read_is_a_400(client, session, world, body, who, url):
    error = _refused(client, session, world, who, "POST", url, 400, json=body)
    assert error["details"] == {"json": ["请求内容不是有效的 JSON。"]}


def test_an_uploaded_files_name_loses_its_control_characters(client, session, world):
    import io

    csv = b"indicator_code,work_date,participant_phones,description\n"
    response = client.post("/api/v1/admin/imports", headers=world.staff, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(csv), "grid\x00export\x07.csv")})
    assert response.status_code == 202, response.json
    assert response.json["filename"] == "gridexport.csv"


# --- the database's own refusal, for a value that slipped past the schemas -------------------

@pytest.mark.parametrize(("sql", "value"), [
    ("SELECT CAST(:v AS bigint)", str(HUGE)),  # 22003 numeric value out of range
    ("SELECT CAST(:v AS jsonb)", '{"a": "\\u0000"}'),  # 22P05 untranslatable character
    ("SELECT convert_from(CAST(:v AS bytea), 'UTF8')", "\\xff"),  # 22021 character not in repertoire
    ("SELECT CAST(:v AS timestamptz) + interval '300000 years'", "2000-01-01T00:00:00Z"),  # 22008
])
def test_a_value_the_database_refuses_is_a_422_and_the_work_is_rolled_back(client, session, world, monkeypatch,
                                                                           sql, value):
    from admin import services as admin_services
    from infra.auth import SYSTEM
    from infra.db import db

    def audit_then_overflow(*_args: Any, **_kwargs: Any) -> Any:
        identity.audit(db.session, SYSTEM, "test.before_overflow")
        db.session.flush()
        db.session.execute(text(sql), {"v": value})
        raise AssertionError("the database accepted it")

    monkeypatch.setattr(admin_services, "audit_log", audit_then_overflow)
    world.staff["Accept-Language"] = "en"
    error = _refused(client, session, world, "staff", "GET", "/api/v1/admin/audit", 422)
    assert error["code"] == "value_out_of_range" and "the field cannot be named" in error["message"]
    assert _send(client, world, "staff", "GET", "/api/v1/admin/postings/1").status_code == 404  # still usable


def test_other_database_errors_stay_500(client, session, world, monkeypatch):
    from admin import services as admin_services
    from infra.db import db

    monkeypatch.setattr(admin_services, "audit_log",
                        lambda *_a, **_k: db.session.execute(text("SELECT 1 / 0")))  # 22012: our bug, not input
    response = _send(client, world, "staff", "GET", "/api/v1/admin/audit")
    assert response.status_code == 500 and response.json["error"]["code"] == "internal_error"


# --- every input schema, now and later --------------------------------------------------------

def _leaves(field: fields.Field) -> list[fields.Field]:
    if isinstance(field, fields.List):
        return [field, *_leaves(field.inner)]
    if isinstance(field, fields.Dict) and field.value_field is not None:
        return [field, *_leaves(field.value_field)]
    return [field]


def test_every_input_integer_is_a_whole_number_field():
    """marshmallow's own Integer truncates fractions (2.9 -> 2) and its `strict` one refuses every
    query string's text: each integer a schema loads is `infra.api.Integer` (Int4, Int8, Id)."""
    loose = [f"{schema.__name__}.{name}" for schema in load_schemas()
             for name, declared in schema._declared_fields.items() for field in _leaves(declared)
             if isinstance(field, fields.Integer) and not isinstance(field, Integer)]
    assert loose == []


def test_every_input_integer_has_bounds_that_fit_bigint_and_every_moment_loads_as_utc():
    unbounded, naive = [], []
    for schema in load_schemas():
        for name, declared in schema._declared_fields.items():
            for field in _leaves(declared):
                if isinstance(field, fields.Integer):
                    ranges = [v for v in field.validators if isinstance(v, validate.Range)]
                    if not any(r.min is not None and r.max is not None and -(2**63) <= r.min and r.max <= INT8_MAX
                               for r in ranges):
                        unbounded.append(f"{schema.__name__}.{name}")
                if isinstance(field, fields.DateTime) and not isinstance(field, UtcDateTime):
                    naive.append(f"{schema.__name__}.{name}")
    assert unbounded == [] and naive == []
