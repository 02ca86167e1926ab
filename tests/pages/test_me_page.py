"""The participant's phone page /me: its language, its security headers, and that its script calls
only endpoints (and reads only fields) that the API really has."""
from __future__ import annotations

import re

from tests.pages.pagekit import assert_routes_exist, assert_strict_policy, fetch_page, schema_fields, script_text

# What the page does with the API, by the names the script reads them under.
ENDPOINTS = {"login": ("POST", "/api/v1/auth/participant/login"), "logout": ("POST", "/api/v1/auth/logout"),
             "balance": ("GET", "/api/v1/me/balance"), "statement": ("GET", "/api/v1/me/statement"),
             "grade": ("GET", "/api/v1/me/grade"), "eligibility": ("GET", "/api/v1/me/eligibility"),
             "codes": ("POST", "/api/v1/me/codes")}


def _page(client, url: str, **headers: str) -> tuple[str, object, dict]:
    return fetch_page(client, url, "me-config", **headers)


def test_the_page_is_chinese_by_default_and_english_by_its_switch_or_the_browser(client):
    html, _, config = _page(client, "/me")
    assert '<html lang="zh-CN">' in html and "出示兑换码" in html and "登录" in html and "积分明细" in html
    assert config["lang"] == "zh" and config["accept_language"] == "zh-CN"
    assert config["strings"]["code_expired"] == "此码已过期，请换一个新码。"
    assert 'href="?lang=en"' in html  # the switch offers the other language

    html, _, config = _page(client, "/me?lang=en")
    assert '<html lang="en">' in html and "Show my code" in html and "My statement" in html and "登录" not in html
    assert config["lang"] == "en" and config["accept_language"] == "en"
    assert config["strings"]["code_expired"] == "This code has expired. Get a new one."
    assert 'href="?lang=zh"' in html

    _, _, config = _page(client, "/me", **{"Accept-Language": "en-US,en;q=0.9"})
    assert config["lang"] == "en"
    _, _, config = _page(client, "/me?lang=zh", **{"Accept-Language": "en-US"})  # the switch wins
    assert config["lang"] == "zh"


def test_the_script_calls_only_endpoints_the_app_serves(app, client):
    """The page hands the script its endpoints by name (built with url_for); the script names no
    path itself, and each call it makes, with its method, is a route of the app."""
    _, _, config = _page(client, "/me")
    script = script_text("me.js")
    assert "/api/" not in script
    # One fetch, in `call`: nothing else (the QR image once had an address holding the code's
    # digits, which the page fetched, and every access log kept) is asked for by a URL.
    assert script.count("fetch(") == 1 and "qr_svg_url" not in script and "issued.qr_svg" in script
    calls = set(re.findall(r'call\("(GET|POST)", API\.(\w+)', script))
    used = {name for _method, name in calls}
    assert used == set(config["api"]) == set(ENDPOINTS)
    for method, name in calls:
        assert (method, config["api"][name]) == ENDPOINTS[name]
    assert_routes_exist(app, {(method, config["api"][name]) for method, name in calls})


def test_the_script_reads_only_fields_the_api_documents(client):
    """The answers' fields the script reads are in the spec's schemas (a renamed field would
    leave a blank on the phone, not an error anyone sees)."""
    spec = client.get("/api/openapi.json").json

    def fields(name: str) -> set[str]:
        return schema_fields(spec, name)

    assert {"token"} <= fields("TokenOut")
    assert {"balance"} <= fields("BalanceOut")
    assert {"grade", "next_grade", "points_12m", "points_to_next"} <= fields("GradeOut")
    assert {"items", "next"} <= fields("StatementOut")
    assert {"kind_label", "amount", "reason", "explanation", "reversed_by_id", "balance_after",
            "effective_at"} <= fields("StatementLineOut")
    assert {"scenario", "eligible", "reasons"} <= fields("VerdictOut")
    assert {"name", "kind", "points_cost", "required_grade", "terms"} <= fields("ScenarioOut")
    assert {"message", "need", "have", "limit"} <= fields("Reason")
    assert {"code", "expires_at", "qr_svg"} <= fields("CodeOut")
    statement_params = {p["name"] for p in spec["paths"]["/api/v1/me/statement"]["get"]["parameters"]}
    assert {"limit", "before"} <= statement_params
    script = script_text("me.js")
    assert '"?limit="' in script and '"&before="' in script


def test_the_page_runs_no_inline_script_and_says_so_in_its_policy(client):
    assert_strict_policy(client, "/me", "me-config", ["me.js"])
    assert client.get("/static/me.css").status_code == 200


def test_the_landing_page_links_to_the_participants_page(client):
    assert 'href="/me"' in client.get("/").get_data(as_text=True)

