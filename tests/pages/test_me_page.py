"""The participant's phone page /me: its language, its security headers, and that its script calls
only endpoints (and reads only fields) that the API really has."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from werkzeug.exceptions import MethodNotAllowed, NotFound

SCRIPT = Path(__file__).resolve().parents[2] / "jieyou/static/me.js"
# What the page does with the API, by the names the script reads them under.
ENDPOINTS = {"login": ("POST", "/api/v1/auth/participant/login"), "logout": ("POST", "/api/v1/auth/logout"),
             "balance": ("GET", "/api/v1/me/balance"), "statement": ("GET", "/api/v1/me/statement"),
             "grade": ("GET", "/api/v1/me/grade"), "eligibility": ("GET", "/api/v1/me/eligibility"),
             "codes": ("POST", "/api/v1/me/codes")}


class _Page(HTMLParser):
    """The tags of a page, with their attributes, and the text of its JSON configuration."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.config_text = ""
        self._in_config = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_config = tag == "script" and dict(attrs).get("id") == "me-config"

    def handle_endtag(self, tag: str) -> None:
        self._in_config = False

    def handle_data(self, data: str) -> None:
        if self._in_config:
            self.config_text += data


def _page(client, url: str, **headers: str) -> tuple[str, _Page, dict]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    parsed = _Page()
    parsed.feed(html)
    return html, parsed, json.loads(parsed.config_text)


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
    script = SCRIPT.read_text(encoding="utf-8")
    assert "/api/" not in script
    calls = set(re.findall(r'call\("(GET|POST)", API\.(\w+)', script))
    used = {name for _method, name in calls}
    assert used == set(config["api"]) == set(ENDPOINTS)
    routes = app.url_map.bind("localhost")
    for method, name in calls:
        assert (method, config["api"][name]) == ENDPOINTS[name]
        try:
            routes.match(config["api"][name], method=method)
        except (NotFound, MethodNotAllowed) as exc:  # pragma: no cover - the failure message
            raise AssertionError(f"{method} {config['api'][name]}: {exc}") from exc


def test_the_script_reads_only_fields_the_api_documents(client):
    """The answers' fields the script reads are in the spec's schemas (a renamed field would
    leave a blank on the phone, not an error anyone sees)."""
    spec = client.get("/api/openapi.json").json
    schemas = spec["components"]["schemas"]

    def fields(name: str) -> set[str]:
        return set(schemas[name]["properties"])

    assert {"token"} <= fields("TokenOut")
    assert {"balance"} <= fields("BalanceOut")
    assert {"grade", "next_grade", "points_12m", "points_to_next"} <= fields("GradeOut")
    assert {"items", "next"} <= fields("StatementOut")
    assert {"kind_label", "amount", "reason", "explanation", "reversed_by_id", "balance_after",
            "effective_at"} <= fields("StatementLineOut")
    assert {"scenario", "eligible", "reasons"} <= fields("VerdictOut")
    assert {"name", "kind", "points_cost", "required_grade", "terms"} <= fields("ScenarioOut")
    assert {"message", "need", "have", "limit"} <= fields("Reason")
    assert {"code", "expires_at", "qr_svg_url"} <= fields("CodeOut")
    statement_params = {p["name"] for p in spec["paths"]["/api/v1/me/statement"]["get"]["parameters"]}
    assert {"limit", "before"} <= statement_params
    script = SCRIPT.read_text(encoding="utf-8")
    assert '"?limit="' in script and '"&before="' in script


def test_the_page_runs_no_inline_script_and_says_so_in_its_policy(client):
    response = client.get("/me")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy and "img-src 'self' blob:" in policy  # the QR image is a blob:
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in response.headers
    _, page, _ = _page(client, "/me")
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert [a for a in scripts if a.get("type") != "application/json"] == [{"src": "/static/me.js", "defer": None}]
    assert not [tag for tag, attrs in page.tags if tag == "style" or "style" in attrs
                or any(name.startswith("on") for name in attrs)]
    script = client.get("/static/me.js")
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/static/me.css").status_code == 200


def test_the_landing_page_links_to_the_participants_page(client):
    assert 'href="/me"' in client.get("/").get_data(as_text=True)

