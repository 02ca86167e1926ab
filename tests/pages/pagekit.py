"""What the tests of the pages (/me, /staff) share: reading a page's tags and JSON configuration,
checking that the calls its scripts make are routes of the app, and its strict policy."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from werkzeug.exceptions import MethodNotAllowed, NotFound

STATIC = Path(__file__).resolve().parents[2] / "jieyou/static"


class Page(HTMLParser):
    """The tags of a page, with their attributes, and the text of its JSON configuration."""

    def __init__(self, config_id: str) -> None:
        super().__init__()
        self.config_id = config_id
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.config_text = ""
        self._in_config = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_config = tag == "script" and dict(attrs).get("id") == self.config_id

    def handle_endtag(self, tag: str) -> None:
        self._in_config = False

    def handle_data(self, data: str) -> None:
        if self._in_config:
            self.config_text += data


def fetch_page(client, url: str, config_id: str, **headers: str) -> tuple[str, Page, dict]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    parsed = Page(config_id)
    parsed.feed(html)
    return html, parsed, json.loads(parsed.config_text)


def script_text(*names: str) -> str:
    return "\n".join((STATIC / name).read_text(encoding="utf-8") for name in names)


def assert_routes_exist(app, calls: set[tuple[str, str]]) -> None:
    """Each (method, address) is a route of the app; `{name}` in an address stands for an id."""
    routes = app.url_map.bind("localhost")
    for method, address in calls:
        path = re.sub(r"\{\w+\}", "1", address)
        try:
            routes.match(path, method=method)
        except (NotFound, MethodNotAllowed) as exc:  # pragma: no cover - the failure message
            raise AssertionError(f"{method} {address}: {exc}") from exc


def assert_strict_policy(client, url: str, config_id: str, scripts: list[str]) -> None:
    """Only our own scripts (deferred, from /static), nothing inline, and a policy that says so."""
    response = client.get(url)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy and "img-src 'self' blob:" in policy  # fetched files are blob:
    assert "connect-src 'self'" in policy and "form-action 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in response.headers
    _, page, _ = fetch_page(client, url, config_id)
    found = [a for tag, a in page.tags if tag == "script" and a.get("type") != "application/json"]
    assert found == [{"src": f"/static/{name}", "defer": None} for name in scripts]
    assert not [tag for tag, attrs in page.tags if tag == "style" or "style" in attrs
                or any(name.startswith("on") for name in attrs)]
    for name in scripts:
        script = client.get(f"/static/{name}")
        assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
        assert script.headers["X-Content-Type-Options"] == "nosniff"


def schema_fields(spec: dict, name: str) -> set[str]:
    return set(spec["components"]["schemas"][name]["properties"])
