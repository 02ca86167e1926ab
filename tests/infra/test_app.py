"""The service as a whole: spec, docs, landing page, error shape."""
from __future__ import annotations


def test_openapi_spec_lists_the_endpoints_with_schemas(client):
    spec = client.get("/api/openapi.json").json
    for path in ("/api/v1/me/balance", "/api/v1/me/statement", "/api/v1/admin/adjustments",
                 "/api/v1/admin/approvals/{request_id}/decision", "/api/v1/admin/audit"):
        assert path in spec["paths"], path
    assert "AdjustmentIn" in spec["components"]["schemas"]
    assert client.get("/api/docs").status_code == 200


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
