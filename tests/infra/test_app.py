"""The service as a whole: spec, docs, landing page, error shape."""
from __future__ import annotations


def test_openapi_spec_lists_the_endpoints_with_schemas(client):
    spec = client.get("/api/openapi.json").json
    for path in ("/api/v1/me/balance", "/api/v1/me/statement", "/api/v1/admin/adjustments",
                 "/api/v1/admin/approvals/{request_id}/decision", "/api/v1/admin/audit"):
        assert path in spec["paths"], path
    assert "AdjustmentIn" in spec["components"]["schemas"]
    assert client.get("/api/docs").status_code == 200


def test_the_interactive_docs_load_everything_from_the_service_itself(client):
    """Regression: /api/docs loaded Swagger UI from a CDN, which a county network may not reach
    (and the docs then showed a blank page). Every script and style it names is served here."""
    import re

    page = client.get("/api/docs").get_data(as_text=True)
    assert "cdn." not in page and "https://" not in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert {a.rsplit("/", 1)[1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}, assets
    for asset in assets:
        got = client.get(asset)
        assert got.status_code == 200 and len(got.data) > 1000, asset
    assert client.get("/api/docs-assets/swagger-ui.js").status_code == 404  # only what the page uses
    assert client.get("/api/docs-assets/..%2fpyproject.toml").status_code == 404


def test_landing_page_shows_live_figures(client):
    page = client.get("/")
    assert page.status_code == 200 and "解忧" in page.get_data(as_text=True)


def test_unknown_route_and_method_are_json_errors(client):
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    wrong = client.delete("/api/v1/me/balance")
    assert wrong.status_code == 405 and wrong.json["error"]["code"] == "method_not_allowed"


def test_malformed_json_is_a_4xx_json_error(client):
    response = client.post("/api/v1/auth/staff/login", data="{not json", content_type="application/json")
    assert 400 <= response.status_code < 500 and "error" in response.json


def test_api_answers_are_not_stored_by_caches_nor_sniffed_and_pages_not_framed(client, session):
    """A sign-in answer carries a bearer token and a statement personal data: neither may be kept by
    a shared proxy or the phone's browser cache (RFC 9111 `no-store`). No body is ever sniffed into
    HTML, and the pages cannot be framed by another site (clickjacking)."""
    from tests import factories

    tree = factories.region_tree(session)
    person = factories.participant(session, tree.grid_a)
    factories.staff(session, "clerk", tree.county)
    signed_in = client.post("/api/v1/auth/participant/login", json={"phone": person.phone, "password": "pass-word-1"})
    assert signed_in.status_code == 201
    balance = client.get("/api/v1/me/balance", headers={"Authorization": f"Bearer {signed_in.json['token']}"})
    refused = client.post("/api/v1/auth/participant/login", json={"phone": person.phone, "password": "wrong-one-1"})
    for answer in (signed_in, balance, refused, client.get("/api/v1/ping"), client.get("/api/openapi.json")):
        assert "no-store" in answer.headers.get("Cache-Control", ""), answer.request.path
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", answer.request.path
    for page in (client.get("/"), client.get("/api/docs")):
        assert page.headers.get("X-Frame-Options") == "DENY"
        assert "frame-ancestors 'none'" in page.headers.get("Content-Security-Policy", "")
        assert page.headers.get("X-Content-Type-Options") == "nosniff"
    assert "Access-Control-Allow-Origin" not in balance.headers  # no CORS: the phone app is not a web page


def _spec_path(rule: str) -> str:
    import re

    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", re.sub(r"<([a-z]+)\([^)]*\):", r"<\1:", rule))


def test_the_spec_documents_every_api_route_and_only_those(app, client):
    """Walk both ways: each route under /api/v1 with its methods is in the spec, and each
    documented operation answers somewhere (not a 404 or 405 from a path that does not exist)."""
    spec = client.get("/api/openapi.json").json
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops
                  if method != "parameters"}
    served = {(_spec_path(rule.rule), method) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/v1/") and rule.rule != "/api/v1/ping"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert served - documented == set()
    assert documented - served == set()
    assert {"participantToken", "staffToken", "outletApiKey"} == set(spec["components"]["securitySchemes"])


def test_uploads_document_their_multipart_file_so_the_docs_can_send_one(client):
    """Evidence and imports read a multipart field `file`: undocumented, /api/docs offered no way to attach it."""
    spec = client.get("/api/openapi.json").json
    for path in ("/api/v1/contributions/{contribution_id}/evidence", "/api/v1/admin/imports"):
        body = spec["paths"][path]["post"].get("requestBody")
        assert body is not None and body["required"], path
        schema = body["content"]["multipart/form-data"]["schema"]
        assert schema["properties"]["file"] == {"type": "string", "format": "binary"} and schema["required"] == ["file"]


def test_health_says_ready_only_when_the_schema_is_this_codes(client, session):
    """A worker started before `jieyou db upgrade` (or against an empty database) answered every
    request 503 'busy' while /healthz said ok; now /healthz is 503 naming both revisions."""
    from sqlalchemy import text

    ready = client.get("/healthz")
    assert ready.status_code == 200 and ready.json["status"] == "ok"
    head = ready.json["revision"]
    session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    session.flush()
    behind = client.get("/healthz")
    assert behind.status_code == 503
    assert behind.json == {"status": "migrations_pending", "database_revision": "0001", "code_revision": head}


def test_the_pages_templates_and_static_files_are_shipped_in_the_package():
    """`pip install .` (README, Production) builds a wheel from the package data listed in
    pyproject.toml, which named no template: an installed service answered / with a 500
    (TemplateNotFound). Every template and static file must match a pattern there."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data.get("jieyou", []) + data.get("*", [])
    files = [p.relative_to(root / "jieyou").as_posix() for folder in ("templates", "static")
             if (root / "jieyou" / folder).is_dir() for p in (root / "jieyou" / folder).rglob("*") if p.is_file()]
    assert "templates/index.html" in files
    assert [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)] == []
