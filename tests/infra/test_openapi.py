"""The OpenAPI spec tells the truth about each operation: the credential it takes and the errors it
can answer with, as its decorators enforce them, and the spec stays a well-formed OpenAPI 3.0."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from infra.auth import STAFF_ROLES
from infra.limits import limiter
from infra.openapi import ErrorSchema
from tests import factories as f

SCHEME_OF_KIND = {"participant": "participantToken", "staff": "staffToken", "outlet": "outletApiKey"}
KIND_OF_SCHEME = {scheme: kind for kind, scheme in SCHEME_OF_KIND.items()}
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def spec(app) -> dict[str, Any]:
    with app.test_client() as client:
        return client.get("/api/openapi.json").json


def _spec_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", re.sub(r"<([a-z]+)\([^)]*\):", r"<\1:", rule))


def _operations(app, spec) -> Iterator[tuple[str, str, Any, Any, dict[str, Any]]]:
    """(path, method, rule, the function answering it, its operation in the spec) for each API route."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule == "/api/v1/ping":
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}):
            func = getattr(view.view_class, method) if hasattr(view, "view_class") else view
            path = _spec_path(rule.rule)
            yield path, method, rule, (view, func), spec["paths"][path][method]


def _rate_limited(view) -> bool:
    return (getattr(view, "view_limits", None) is not None
            or getattr(view, "__wrapper-limiter-instance", None) is not None)


def test_each_operation_declares_the_credentials_its_require_enforces(app, spec):
    """`require(kind, *roles)` is the security: its kinds as schemes, its staff roles (admin always)
    in `x-roles`, 401 and 403; an operation without it is public (`security: []`), never 403."""
    public = set()
    for path, method, _rule, (_view, func), op in _operations(app, spec):
        access = getattr(func, "access", None)
        where = f"{method.upper()} {path}"
        if access is None:
            public.add(where)
            assert op["security"] == [], where
            assert "403" not in op["responses"] and "x-roles" not in op, where
            assert "public" in op["description"], where
            continue
        assert op["security"] == [{SCHEME_OF_KIND[kind]: []} for kind in access.kinds], where
        assert {"401", "403"} <= set(op["responses"]), where
        if "staff" in access.kinds:
            allowed = {*access.roles, "admin"} if access.roles else set(STAFF_ROLES)
            assert set(op["x-roles"]) == allowed, where
            assert all(role in op["description"] for role in allowed), where
        else:
            assert "x-roles" not in op, where
    assert "security" not in spec  # no global default that an operation could silently inherit
    assert public == {"POST /api/v1/auth/staff/login", "POST /api/v1/auth/participant/login", "GET /api/v1/scenarios",
                      "GET /api/v1/reference/rules", "GET /api/v1/reference/screening-list"}


def test_each_operation_documents_the_errors_its_declaration_implies(app, spec):
    """A path naming something: 404; a body: 413 and 422 (400 when it is JSON); query arguments: 422;
    a write: 409; a rate limit (`view_limits` or Flask-Limiter): 429. Every error is the shared shape."""
    for path, method, rule, (view, _func), op in _operations(app, spec):
        where = f"{method.upper()} {path}"
        responses = op["responses"]
        assert ("404" in responses) >= bool(rule.arguments), where
        body = op.get("requestBody")
        if body:
            assert {"413", "422"} <= set(responses), where
            assert ("400" in responses) == ("application/json" in body["content"]), where
        if any(p["in"] == "query" for p in op.get("parameters", [])):
            assert "422" in responses, where
        assert ("409" in responses) == (method != "get"), where
        assert ("429" in responses) == _rate_limited(view), where
        assert responses["default"] == {"$ref": "#/components/responses/DEFAULT_ERROR"}, where
    for name, response in spec["components"]["responses"].items():
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, name
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(spec["components"]["schemas"]["ErrorBody"]["required"]) == {"code", "message", "details"}
    assert "Retry-After" in spec["components"]["responses"]["TOO_MANY_REQUESTS"]["headers"]


def test_the_counters_code_endpoints_and_sign_in_document_their_limits_and_refusals(spec):
    """What a counter's integrator and a phone app meet first: an unknown code is a 404, guessing is a
    429, a wrong password a 401 (the sign-in is public all the same)."""
    for path in ("/api/v1/outlet/lookup", "/api/v1/outlet/redemptions", "/api/v1/outlet/holds"):
        assert {"401", "403", "404", "409", "422", "429"} <= set(spec["paths"][path]["post"]["responses"]), path
    for path in ("/api/v1/auth/staff/login", "/api/v1/auth/participant/login"):
        op = spec["paths"][path]["post"]
        assert op["security"] == [] and {"401", "422", "429"} <= set(op["responses"]), path
    assert "429" in spec["paths"]["/api/v1/me/codes"]["post"]["responses"]
    assert "413" in spec["paths"]["/api/v1/admin/imports"]["post"]["responses"]


def _walk_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _walk_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_refs(item)


def test_the_spec_is_well_formed_openapi_3(spec):
    """What a validator would check first, without adding one: every reference resolves, every
    security requirement names a declared scheme (with no scopes: OpenAPI 3.0), every operation has
    a success response and only status or `default` keys, and every path parameter is declared."""
    assert spec["openapi"].startswith("3.0.") and spec["info"]["title"] and spec["info"]["version"]
    for ref in set(_walk_refs(spec)):
        assert ref.startswith("#/"), ref
        node: Any = spec
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, ref
            node = node[part]
    schemes = spec["components"]["securitySchemes"]
    assert set(schemes) == set(KIND_OF_SCHEME)
    for name, scheme in schemes.items():
        assert scheme["type"] in ("http", "apiKey"), name
        assert scheme.get("scheme") == "bearer" if scheme["type"] == "http" else scheme["in"] == "header", name
    for path, ops in spec["paths"].items():
        declared_in_path = {p["name"] for p in ops.get("parameters", []) if p["in"] == "path"}
        for method, op in ops.items():
            if method == "parameters":
                continue
            assert method in METHODS, (path, method)
            for requirement in op["security"]:
                assert len(requirement) == 1 and all(scopes == [] for scopes in requirement.values()), path
                assert set(requirement) <= set(schemes), path
            assert all(re.fullmatch(r"[1-5]\d\d|default", str(code)) for code in op["responses"]), path
            assert any(str(code).startswith("2") for code in op["responses"]), (path, method)
            for response in op["responses"].values():
                assert "$ref" in response or "description" in response, (path, method)
            names = declared_in_path | {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert set(re.findall(r"{([^}]+)}", path)) == names, (path, method)


# --- the spec against the service itself ---------------------------------------------------

def _url(path: str, ops: dict[str, Any]) -> str:
    """The path with each parameter filled in: an id that names nothing, an enum's first value."""
    params = {p["name"]: p["schema"] for p in ops.get("parameters", []) if p["in"] == "path"}
    for op in ops.values():
        if isinstance(op, dict):
            params.update({p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "path"})

    def value(match: re.Match[str]) -> str:
        schema = params[match.group(1)]
        if "enum" in schema:
            return str(schema["enum"][0])
        return "999999999" if schema.get("type") == "integer" else "x"

    return re.sub(r"{([^}]+)}", value, path)


def test_the_service_answers_as_its_spec_says_to_each_credential(client, session, spec):
    """Drive every operation from the spec: without a credential, a secured one is a 401 in the
    error shape and a public one is not refused; a credential of a kind it does not list, or a staff
    role outside its `x-roles`, is a 403. A view checking credentials by hand, out of `require`'s
    sight, would be documented public and fail here."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    admin = f.staff(session, "admin", tree.county)
    _partner, outlets, _desks = f.shop(session, tree.town_a, outlets=1)
    from identity import services as identity

    credentials = {
        "participant": f.bearer(session, "participant", person.id),
        "staff": f.bearer(session, "staff", admin.id),
        "outlet": {"X-Api-Key": identity.issue_api_key(session, admin, outlets[0].id)[0]},
    }
    role_tokens = {role: f.bearer(session, "staff", f.staff(session, role, tree.county).id)
                   for role in STAFF_ROLES if role != "admin"}
    session.flush()
    checked = 0
    for path, ops in spec["paths"].items():
        url = _url(path, ops)
        for method, op in ops.items():
            if method == "parameters":
                continue
            limiter.reset()  # the counter's code limits are shared by its operations: each starts afresh
            send = getattr(client, method)
            kwargs = {"json": {}} if method != "get" else {}
            anonymous = send(url, **kwargs)
            where = f"{method.upper()} {path}"
            if not op["security"]:
                assert anonymous.status_code not in (401, 403), where
                continue
            assert anonymous.status_code == 401, (where, anonymous.status_code, anonymous.json)
            assert ErrorSchema().validate(anonymous.json) == {} and anonymous.json["error"]["code"] == "unauthorized"
            taken = {KIND_OF_SCHEME[name] for requirement in op["security"] for name in requirement}
            for kind in set(credentials) - taken:
                refused = send(url, headers=credentials[kind], **kwargs)
                assert refused.status_code == 403, (where, kind, refused.status_code)
            for role in set(role_tokens) - set(op.get("x-roles", STAFF_ROLES)):
                refused = send(url, headers=role_tokens[role], **kwargs)
                assert refused.status_code == 403, (where, role, refused.status_code)
                assert refused.json["error"]["code"] == "role_required"
                assert refused.json["error"]["details"]["roles"], where
            checked += 1
    assert checked > 60


def test_a_body_over_the_limit_is_the_documented_413(client, session):
    """Every operation with a body documents 413: the limit holds for JSON as for uploads."""
    tree = f.region_tree(session)
    headers = f.bearer(session, "staff", f.staff(session, "clerk", tree.county).id)
    from jieyou.app import MAX_REQUEST_BYTES

    big = b'{"reason": "' + b"x" * MAX_REQUEST_BYTES + b'"}'
    refused = client.post("/api/v1/admin/adjustments", data=big, content_type="application/json", headers=headers)
    assert refused.status_code == 413 and refused.json["error"]["code"] == "payload_too_large"
