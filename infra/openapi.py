"""What the OpenAPI spec says of each operation's credentials and errors, derived from the
decorators that enforce them, so that the spec cannot drift from what the service does:

- `require(...)` (its `access`): the credentials taken (`security`, `x-roles`), 401 and 403;
  an operation without it is documented as public (`security: []`);
- a path naming something (`/accounts/<int:account_id>`): 404;
- a body: 400 (not JSON), 413 (over `MAX_CONTENT_LENGTH`), 422; query arguments: 422;
- a write (POST, PUT, PATCH, DELETE): 409;
- a rate limit (`view_limits`, `limiter.limit`): 429 with Retry-After.

All of it runs once, when a blueprint is registered; nothing here runs per request.
Every error response has the one shape of `infra.errors`: `{error: {code, message, details}}`.
"""
from __future__ import annotations

import http
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import flask_smorest
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields
from werkzeug.routing import Rule

from infra.auth import Access
from infra.limits import is_rate_limited

# One security scheme per kind of principal: a participant's and a staff member's tokens are both
# bearer tokens, but an operation takes one or the other, and the spec says which.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "participantToken": {
        "type": "http", "scheme": "bearer",
        "description": "A participant's token from `POST /api/v1/auth/participant/login`: "
                       "`Authorization: Bearer <token>`."},
    "staffToken": {
        "type": "http", "scheme": "bearer",
        "description": "A staff member's token from `POST /api/v1/auth/staff/login`: `Authorization: Bearer "
                       "<token>`. Each operation lists the roles it lets in (`x-roles`; admin always)."},
    "outletApiKey": {
        "type": "apiKey", "in": "header", "name": "X-Api-Key",
        "description": "An outlet's API key, issued by an admin and shown once "
                       "(`Authorization: ApiKey <key>` is accepted too)."},
}
SCHEME_OF_KIND = {"participant": "participantToken", "staff": "staffToken", "outlet": "outletApiKey"}
_CREDENTIAL_OF_KIND = {"participant": "a participant's token", "staff": "a staff token",
                       "outlet": "an outlet's API key"}

WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})

# What each documented error status means here, and the stable codes it may carry.
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The body is not valid JSON (`bad_request`).",
    401: "No credential, or one unknown, expired, revoked or of a deactivated account (`unauthorized`); "
         "at sign-in, wrong credentials (`bad_credentials`).",
    403: "Signed in, but not allowed: another kind of account (`forbidden`, `outlet_only`, "
         "`participants_only`), another role (`role_required`; `details.roles` names the roles that may) "
         "or too narrow a scope (`scope_required`).",
    404: "Nothing of that id, or nothing the caller may see (`not_found` or a more precise code).",
    409: "The request conflicts with the current state (`conflict` or a more precise code, such as "
         "`insufficient_balance`); two requests at once taking the same phone number, username or code "
         "answer as one after the other (`phone_taken`...); any other race caught by the database is a "
         "`conflict` to retry.",
    413: "Too large (`payload_too_large`): a body over the most the service reads, the message saying the "
         "limit; for an upload, a file over its own limit (the operation says it), `details.file` saying it.",
    422: "Invalid input: `validation_failed` with `details` naming each field (unknown fields too) and "
         "its messages; `idempotency_key_reused` for a key sent before with another request.",
    429: "Too many requests (`rate_limited`); `Retry-After` says in how many seconds to try again.",
    503: "Unavailable for now, try again later: `unavailable` while the database is busy; `queue_unavailable` "
         "when the job queue refused the background job this request queues (nothing was started).",
}
DEFAULT_ERROR_DESCRIPTION = ("Any other error, in the same shape: 503 `unavailable` while the database is "
                             "busy, 500 `internal_error`.")
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                               "schema": {"type": "integer", "minimum": 0}}}


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "Stable, for programs: `insufficient_balance`."})
    message = fields.String(required=True, metadata={
        "description": "For people, in Chinese, or English with `Accept-Language: en`."})
    details = fields.Dict(keys=fields.String(), required=True, metadata={
        "description": "Per field (nested for nested fields), the list of what is wrong with it; may be empty."})


class ErrorSchema(Schema):
    """The one error shape (`infra.errors.error_body`)."""

    error = fields.Nested(ErrorBodySchema, required=True)


def status_name(status: int) -> str:
    """The name flask-smorest registers a status's response under (`UNPROCESSABLE_ENTITY`)."""
    return http.HTTPStatus(status).name


class Api(flask_smorest.Api):
    """flask-smorest's Api with this service's error shape and security schemes."""

    ERROR_SCHEMA = ErrorSchema

    def _init_spec(self, **kwargs: Any) -> None:
        super()._init_spec(**kwargs)
        for name, scheme in SECURITY_SCHEMES.items():
            self.spec.components.security_scheme(name, scheme)

    def _register_responses(self) -> None:
        """As flask-smorest's (a response for every status, registered lazily), with the error
        shape and what each status means here."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": ERROR_DESCRIPTIONS.get(status, status.phrase)}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            if status == 429:
                response["headers"] = RETRY_AFTER
            prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": DEFAULT_ERROR_DESCRIPTION, "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


def view_method(view: Callable[..., Any], method: str) -> Callable[..., Any]:
    """The function that answers `method` for a registered view: a MethodView's method, or the view."""
    view_class = getattr(view, "view_class", None)
    return getattr(view_class, method) if view_class is not None else view


def access_of(view: Callable[..., Any], method: str) -> Access | None:
    """What `require` demands of `method` on `view` (on the method, or on the whole view); None: public."""
    return getattr(view_method(view, method), "access", None) or getattr(view, "access", None)


def access_text(access: Access | None) -> str:
    if access is None:
        return "**Access:** public, no credential."
    taken = " or ".join(_CREDENTIAL_OF_KIND[kind] for kind in access.kinds)
    if "staff" in access.kinds:
        taken += f" (staff roles: {', '.join(access.staff_roles())})"
    return f"**Access:** {taken}."


def error_statuses(view: Callable[..., Any], rule: Rule, method: str, access: Access | None,
                   body: Mapping[str, Any] | None, has_arguments: bool, declared: Iterable[int] = ()) -> set[int]:
    """The error statuses an operation can answer with, from what it is declared with; `declared`:
    those its service answers with that nothing else shows (`Blueprint.errors`)."""
    statuses: set[int] = set()
    if access is not None:
        statuses |= {401, 403}
    if rule.arguments:
        statuses.add(404)
    if body is not None:
        statuses |= {413, 422}
        if "application/json" in body.get("content", {}):
            statuses.add(400)
    if has_arguments:
        statuses.add(422)
    if method in WRITE_METHODS:
        statuses.add(409)
    if is_rate_limited(view):
        statuses.add(429)
    return statuses | set(declared)


def document_operation(doc: dict[str, Any], doc_info: dict[str, Any], *, view: Callable[..., Any],
                       rule: Rule, method: str) -> dict[str, Any]:
    """Add an operation's security and error responses to its doc (a flask-smorest doc callback's
    work, after the arguments and responses are documented). A status already documented by the
    view (`alt_response`) is left as the view says it."""
    access = access_of(view, method)
    doc["security"] = [{SCHEME_OF_KIND[kind]: []} for kind in access.kinds] if access else []
    if access is not None and "staff" in access.kinds:
        doc["x-roles"] = list(access.staff_roles())
    body = doc.get("requestBody") or doc_info.get("manual_doc", {}).get("requestBody")
    has_arguments = bool(doc_info.get("arguments"))
    responses = doc.setdefault("responses", {})
    documented = {str(status) for status in responses}
    for status in sorted(error_statuses(view, rule, method, access, body, has_arguments,
                                                doc_info.get("errors", ()))):
        if str(status) not in documented:
            responses[status] = status_name(status)
    docstring = doc_info.setdefault("docstring", {})
    docstring["description"] = "\n\n".join(filter(None, [docstring.get("description"), access_text(access)]))
    return doc
