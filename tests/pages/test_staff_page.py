"""The staff console /staff: its language, its security headers, that its scripts call only
endpoints (and read only fields) the API really has, and that it offers each section to the roles
the API lets act there."""
from __future__ import annotations

import re

from tests.pages.pagekit import assert_routes_exist, assert_strict_policy, fetch_page, schema_fields, script_text

SCRIPTS = ["staff.js", "staff-queue.js", "staff-decisions.js", "staff-ledger.js"]
# What the console does with the API, by the names its scripts read them under.
ENDPOINTS = {
    "login": ("POST", "/api/v1/auth/staff/login"), "logout": ("POST", "/api/v1/auth/logout"),
    "whoami": ("GET", "/api/v1/auth/me"), "rules": ("GET", "/api/v1/reference/rules"),
    "queue": ("GET", "/api/v1/admin/contributions"),
    "contribution": ("GET", "/api/v1/admin/contributions/{contribution_id}"),
    "verify": ("POST", "/api/v1/admin/contributions/{contribution_id}/verify"),
    "reject": ("POST", "/api/v1/admin/contributions/{contribution_id}/reject"),
    "bulk_verify": ("POST", "/api/v1/admin/contributions/verify"),
    "evidence": ("GET", "/api/v1/contributions/{contribution_id}/evidence/{evidence_id}"),
    "participant": ("GET", "/api/v1/admin/participants/{participant_id}"),
    "approvals": ("GET", "/api/v1/admin/approvals"),
    "decision": ("POST", "/api/v1/admin/approvals/{request_id}/decision"),
    "notices": ("GET", "/api/v1/notices"),
    "resolve": ("POST", "/api/v1/admin/objections/{objection_id}/resolve"),
    "checks": ("GET", "/api/v1/admin/ledger/checks"), "audit": ("GET", "/api/v1/admin/audit"),
}


def _page(client, url: str, **headers: str) -> tuple[str, object, dict]:
    return fetch_page(client, url, "staff-config", **headers)


def _calls(script: str) -> set[tuple[str, str]]:
    """(method, name) of every call the scripts make: `call("GET", API.x)`, `call("POST",
    J.address("x", …))`, and the evidence files fetched with the bearer (`fetchBlob`, a GET)."""
    calls = set(re.findall(r'call\("(GET|POST)", (?:API\.|J\.address\(")(\w+)', script))
    calls |= {("GET", name) for name in re.findall(r'fetchBlob\(J\.address\("(\w+)"', script)}
    return calls


def test_the_console_is_chinese_by_default_and_english_by_its_switch_or_the_browser(client):
    html, _, config = _page(client, "/staff")
    assert '<html lang="zh-CN">' in html and "工作人员控制台" in html and "待审核" in html and "审计日志" in html
    assert config["lang"] == "zh" and config["accept_language"] == "zh-CN"
    assert config["strings"]["reason_missing"] == "请填写退回理由。"
    assert config["role_names"]["verifier"] == "审核员"
    assert 'href="?lang=en"' in html

    html, _, config = _page(client, "/staff?lang=en")
    assert '<html lang="en">' in html and "Staff console" in html and "Verification queue" in html
    assert "审计日志" not in html
    assert config["lang"] == "en" and config["accept_language"] == "en"
    assert config["strings"]["reason_missing"] == "Give the reason for rejecting."
    assert 'href="?lang=zh"' in html

    _, _, config = _page(client, "/staff", **{"Accept-Language": "en-US,en;q=0.9"})
    assert config["lang"] == "en"
    _, _, config = _page(client, "/staff?lang=zh", **{"Accept-Language": "en-US"})
    assert config["lang"] == "zh"


def test_the_scripts_call_only_endpoints_the_app_serves(app, client):
    """The page hands the scripts their endpoints by name (url_for, ids as `{name}`); the scripts
    name no path themselves, and each call, with its method, is a route of the app."""
    _, _, config = _page(client, "/staff")
    script = script_text(*SCRIPTS)
    assert "/api/" not in script
    calls = _calls(script)
    assert {name for _method, name in calls} == set(config["api"]) == set(ENDPOINTS)
    for method, name in calls:
        assert (method, config["api"][name]) == ENDPOINTS[name]
    assert_routes_exist(app, {(method, config["api"][name]) for method, name in calls})


def test_each_section_is_offered_to_the_roles_the_api_lets_act(client):
    """The roles the page hands the scripts are the spec's `x-roles` of each operation (both come
    from the one `require` that enforces them): a verifier is offered the queue, not the audit log."""
    spec = client.get("/api/openapi.json").json
    _, _, config = _page(client, "/staff")
    for name, (method, address) in ENDPOINTS.items():
        operation = spec["paths"][address][method.lower()]
        assert config["roles"][name] == operation.get("x-roles", []), name
    assert "verifier" in config["roles"]["verify"] and "verifier" not in config["roles"]["audit"]
    assert "approver" in config["roles"]["decision"] and "clerk" not in config["roles"]["decision"]
    assert config["roles"]["audit"] == ["auditor", "admin"]


def test_the_scripts_read_only_fields_the_api_documents(client):
    """The answers' fields the scripts read are in the spec's schemas (a renamed field would leave
    a blank on the console, not an error anyone sees), and the query arguments they send exist."""
    spec = client.get("/api/openapi.json").json

    def fields(name: str) -> set[str]:
        return schema_fields(spec, name)

    def params(address: str) -> set[str]:
        return {p["name"] for p in spec["paths"][address]["get"]["parameters"]}

    assert {"token"} <= fields("TokenOut")
    assert {"kind", "id", "label", "role", "scope_region_id", "scope_level"} <= fields("PrincipalOut")
    assert {"indicators"} <= fields("RuleSetOut") and {"code", "name_zh", "name_en"} <= fields("IndicatorOut")
    assert {"items", "next"} <= fields("ContributionPageOut")
    assert {"id", "indicator_code", "work_date", "members", "submitted_at", "duplicate_of", "state",
            "proposed_points", "notice_until", "description", "conflict_item", "warning_colour", "quantity",
            "incident_key", "decision_reason", "case_record"} <= fields("ContributionOut")
    assert {"events", "objections", "evidence"} <= fields("ContributionDetailOut")
    assert {"participant_id", "share", "points"} <= fields("MemberOut")
    assert {"to_state", "actor_label", "at", "note"} <= fields("EventOut")
    assert {"id", "filename", "content_type"} <= fields("EvidenceOut")
    assert {"id", "text", "status", "lodged_at"} <= fields("ObjectionOut")
    assert {"id", "name", "phone"} <= fields("ParticipantOut")
    assert {"id", "kind", "status", "account_id", "amount", "posting_id", "reason", "requested_by",
            "requested_at"} <= fields("ApprovalOut")
    # The list's rows: what deciding needs, the participant by the name the reader may see.
    assert {"id", "kind", "status", "amount", "posting_id", "reason", "requested_by", "requested_at",
            "requested_by_name", "accounts", "original"} <= fields("ApprovalRowOut")
    assert {"account_code", "participant_id", "name", "amount"} <= fields("ApprovalPartyOut")
    assert {"kind_label", "effective_at", "reason"} <= fields("ApprovalOriginalOut")
    assert {"items", "next"} <= fields("NoticePageOut")
    assert {"id", "indicator_code", "indicator_name", "names", "description", "proposed_points", "notice_until",
            "open_objections"} <= fields("NoticeOut")
    assert {"verify", "reconcile"} <= fields("CheckStatusOut")
    assert {"ok", "started_at", "finished_at", "stats", "problems"} <= fields("CheckOut")
    assert {"items", "next"} <= fields("AuditPageOut")
    assert {"at", "actor_label", "actor_kind", "actor_id", "action", "object_type", "object_id", "details",
            "ip"} <= fields("AuditOut")
    assert {"state", "indicator_code", "limit", "after"} <= params("/api/v1/admin/contributions")
    assert {"status", "limit", "after"} <= params("/api/v1/admin/approvals")
    assert {"limit", "after", "objected"} <= params("/api/v1/notices")
    assert {"action", "limit", "before"} <= params("/api/v1/admin/audit")
    script = script_text(*SCRIPTS)
    for sent in ('"queue", {}, { state: "submitted", indicator_code:', '"approvals", {}, { status: "pending", limit:',
                 '"notices", {}, { limit: PAGE, after: after, objected: true }', '"audit", {}, { action: $("audit-action").value'):
        assert sent in script
    # The bodies they send: the load schemas' fields.
    assert {"note"} <= fields("VerifyIn") and {"reason"} <= fields("ReasonIn")
    assert {"contribution_ids", "note"} <= fields("BulkVerifyIn")
    assert {"approve", "note"} <= fields("DecisionIn") and {"uphold", "resolution"} <= fields("ResolveIn")
    assert {"username", "password"} <= fields("StaffLoginIn")


def test_the_console_runs_no_inline_script_and_says_so_in_its_policy(client):
    assert_strict_policy(client, "/staff", "staff-config", SCRIPTS)
    assert client.get("/static/staff.css").status_code == 200
    assert client.get("/staff").headers["Referrer-Policy"] == "no-referrer"


def test_the_landing_page_links_to_the_console(client):
    assert 'href="/staff"' in client.get("/").get_data(as_text=True)
