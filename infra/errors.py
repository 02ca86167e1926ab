"""Domain errors and the one JSON error shape every client sees:

    {"error": {"code": "insufficient_balance", "message": "...", "details": {"field": ["..."]}}}

`code` is stable for programs; `message` is in the reader's language (Chinese first).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, jsonify, request
from flask_babel import gettext, lazy_gettext
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from infra.field_messages import localize

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A broken business rule. Subclasses fix the HTTP status and a default code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None,
                 **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params
        if code:
            self.code = code
        self.details = details or {}

    def localized(self) -> str:
        return gettext(self.message, **self.params)


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Unavailable(DomainError):
    """A service this request needs is down for now (503): the client may try again later."""

    status = 503
    code = "unavailable"


class TooLarge(DomainError):
    """A file or body over its limit (413): `too_large` names the field and the limit in words."""

    status = 413
    code = "payload_too_large"


def size_in_words(size: int) -> str:
    """A limit as people say it: "10 MB" (binary megabytes, as a phone shows a file's size)."""
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def too_large(field: str, limit: int) -> TooLarge:
    """The upload in `field` is over `limit` bytes: said in the reader's language, in the message
    and beside the field."""
    words = size_in_words(limit)
    beside = gettext("At most %(limit)s.", limit=words)
    return TooLarge("The upload in field %(field)s is larger than %(limit)s.", field=field, limit=words,
                    details={field: [beside]})


class IdempotencyConflict(DomainError):
    """Same idempotency key, different payload: the caller reused a key by mistake."""

    status = 422
    code = "idempotency_key_reused"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_failed",
    429: "rate_limited", 500: "internal_error", 503: "unavailable",
}
# What the reader is told for each status, in their language (Werkzeug's descriptions are English
# only); any other status is "could not be processed", or "internal error" from 500 up.
_HTTP_MESSAGES = {
    401: lazy_gettext("Sign in first."), 403: lazy_gettext("Your role does not allow this action."),
    404: lazy_gettext("Not found."), 405: lazy_gettext("Method not allowed."),
    413: lazy_gettext("The request is too large."), 415: lazy_gettext("Unsupported content type."),
    429: lazy_gettext("Too many requests; try again later."), 503: lazy_gettext("The service is busy; try again."),
}


# SQLSTATEs of a value the database cannot hold: numeric out of range, untranslatable character,
# character not in repertoire, datetime field overflow. Schemas refuse such values first, naming
# the field; one that slips past them is still the client's input, not a server fault.
BAD_VALUE_SQLSTATES = frozenset({"22003", "22P05", "22021", "22008"})


def sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE psycopg gives a database error; None for errors of other databases."""
    return getattr(exc.orig, "sqlstate", None)


def _flatten_webargs(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs nests errors by location ({"json": {"amount": [...]}}); clients want fields."""
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[location] = fields
    return flat


def _over_request_limit() -> bool:
    """A 413 for a body longer than the app reads at all (MAX_CONTENT_LENGTH), not another limit."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return bool(limit) and (request.content_length or 0) > limit


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Any:
        return jsonify(error_body(exc.code, exc.localized(), localize(exc.details))), exc.status

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        status = exc.code or 500
        data = getattr(exc, "data", None) or {}
        details: dict[str, Any] = {}
        if "messages" in data:
            details = localize(_flatten_webargs(data["messages"]))
            message = gettext("Some fields are invalid.")
        elif status == 413 and _over_request_limit():
            message = gettext("The request is larger than %(limit)s.",
                              limit=size_in_words(current_app.config["MAX_CONTENT_LENGTH"]))
        elif status in _HTTP_MESSAGES:
            message = str(_HTTP_MESSAGES[status])
        elif status >= 500:
            message = gettext("Internal error.")
        else:
            message = gettext("The request could not be processed.")
        response = jsonify(error_body(_HTTP_CODES.get(status, "error"), message, details))
        response.status_code = status
        limit = getattr(exc, "limit", None)  # flask-limiter's RateLimitExceeded
        retry_after = getattr(exc, "retry_after", None)  # infra.limits.RateLimited
        if status == 429 and retry_after is None and limit is not None:
            retry_after = limit.limit.get_expiry()
        if status == 429 and retry_after is not None:
            # Only a refused request says when to come back: rate-limit headers on every answer
            # cost the counter an eighth of its CPU per redemption (a storage read per limit).
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(OperationalError)
    def _db_busy(exc: OperationalError) -> Any:
        log.warning("database busy on %s: %s", request.path, exc)
        return jsonify(error_body("unavailable", gettext("The service is busy; try again."))), 503

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError) -> Any:
        # Services check rules first; reaching here means a race the database caught for us.
        log.warning("integrity error on %s: %s", request.path, exc.orig)
        return jsonify(error_body("conflict", gettext("The request conflicts with the current state; retry."))), 409

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error on %s", request.path)
        return jsonify(error_body("internal_error", gettext("Internal error."))), 500

    @app.errorhandler(DBAPIError)
    def _bad_value(exc: DBAPIError) -> Any:
        # A backstop: the database only says that some value did not fit, not which field held it.
        # The request's unit of work rolls back, as on any 4xx (`jieyou.app._unit_of_work`).
        if sqlstate(exc) not in BAD_VALUE_SQLSTATES:
            return _unexpected(exc)
        log.warning("value refused by the database on %s: %s", request.path, exc.orig)
        return jsonify(error_body("value_out_of_range", gettext(
            "A value is out of the range the database accepts; the field cannot be named here."))), 422
