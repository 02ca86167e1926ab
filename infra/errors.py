"""Domain errors and the one JSON error shape every client sees:

    {"error": {"code": "insufficient_balance", "message": "...", "details": {"field": ["..."]}}}

`code` is stable for programs; `message` is in the reader's language (Chinese first).
"""
from __future__ import annotations

import logging
import re
import sqlite3
import sys
import traceback
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, jsonify, request
from flask_babel import gettext, lazy_gettext
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, StatementError
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


def constraint_name(exc: DBAPIError) -> str | None:
    """The constraint a database error names: PostgreSQL says it; SQLite names the columns of a
    UNIQUE one ("UNIQUE constraint failed: participants.phone"), which our naming convention
    (`infra.db.NAMING_CONVENTION`, uq_<table>_<columns>) turns into the same name."""
    return _constraint_of(exc.orig)


def _constraint_of(driver_error: Any) -> str | None:
    diag = getattr(driver_error, "diag", None)
    if diag is not None:
        return getattr(diag, "constraint_name", None)
    if not isinstance(driver_error, sqlite3.IntegrityError):
        return None
    text = str(driver_error)
    if found := re.fullmatch(r"UNIQUE constraint failed: index '(\w+)'", text):
        return found[1]
    if found := re.fullmatch(r"UNIQUE constraint failed: ((?:\w+\.\w+)(?:, \w+\.\w+)*)", text):
        pairs = [pair.split(".", 1) for pair in found[1].split(", ")]
        return f"uq_{pairs[0][0]}_{'_'.join(column for _table, column in pairs)}"
    return None


def _is_unique_violation(exc: DBAPIError) -> bool:
    state = sqlstate(exc)
    return state == "23505" if state is not None else isinstance(exc.orig, sqlite3.IntegrityError)


# UNIQUE constraint -> the 409 its service gives when it finds the value taken (`phone_taken`
# naming `phone`...). Two requests at once both find it free, and the database refuses the second:
# that one answers as it would a moment later (`on_unique_violation` registers them).
_UNIQUE_REFUSALS: dict[str, Callable[[], DomainError]] = {}


def on_unique_violation(constraint: str, refusal: Callable[[], DomainError]) -> None:
    """Answer a race on `constraint` that reaches the handlers with `refusal()`, the service's own."""
    _UNIQUE_REFUSALS[constraint] = refusal


def describe_database_error(exc: BaseException) -> str:
    """What may be logged of a database error: its class, SQLSTATE and constraint. Not its text:
    the driver's message carries the values (`DETAIL: Key (phone)=(13712345678) already exists.`),
    and SQLAlchemy's the statement (its parameters are hidden, `infra.db.make_engine`)."""
    driver_error = exc.orig if isinstance(exc, StatementError) else exc
    parts = [type(exc).__name__]
    if driver_error is not exc and driver_error is not None:
        parts[0] += f" ({type(driver_error).__module__.split('.')[0]}.{type(driver_error).__name__})"
    if (state := getattr(driver_error, "sqlstate", None)) is not None:
        parts.append(f"SQLSTATE {state}")
    if (constraint := _constraint_of(driver_error)) is not None:
        parts.append(f"constraint {constraint}")
    if getattr(exc, "connection_invalidated", False):
        parts.append("connection lost")
    return ", ".join(parts)


def _from_database(exc: BaseException) -> bool:
    """An error whose text may hold the values of a statement: SQLAlchemy's, or the driver's."""
    module = type(exc).__module__
    return isinstance(exc, (StatementError, sqlite3.Error)) or module == "psycopg" or module.startswith("psycopg.")


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it was raised from or while handling, last first (as logged)."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain


def safe_traceback(exc: BaseException) -> str:
    """The traceback `log.exception` would write, each database error in the chain said by
    `describe_database_error` instead of its text."""
    parts: list[str] = []
    chain = _chain(exc)[::-1]
    for index, item in enumerate(chain):
        if index:
            parts.append("\nThe above exception was the direct cause of the following exception:\n\n"
                         if chain[index].__cause__ is chain[index - 1] else
                         "\nDuring handling of the above exception, another exception occurred:\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(item.__traceback__))
        if _from_database(item):
            parts.append(f"{type(item).__module__}.{type(item).__name__}: {describe_database_error(item)}\n")
        else:
            parts.extend(traceback.format_exception_only(type(item), item))
    return "".join(parts).rstrip("\n")


def log_failure(logger: logging.Logger, message: str, *args: Any) -> None:
    """`logger.exception(message, *args)` from an `except` block, with every database error in the
    exception's chain said by `describe_database_error`, not by its text."""
    exc = sys.exc_info()[1]
    if exc is not None and any(_from_database(item) for item in _chain(exc)):
        logger.error(message + "\n%s", *args, safe_traceback(exc))
    else:
        logger.exception(message, *args)


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

    # The logs name the path, never the query string, and a database error only by its class,
    # SQLSTATE and constraint (`describe_database_error`): its text holds the values.

    @app.errorhandler(OperationalError)
    def _db_busy(exc: OperationalError) -> Any:
        log.warning("database busy on %s: %s", request.path, describe_database_error(exc))
        return jsonify(error_body("unavailable", gettext("The service is busy; try again."))), 503

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError) -> Any:
        # Services check rules first; reaching here means a race the database caught for us.
        refusal = _UNIQUE_REFUSALS.get(constraint_name(exc) or "") if _is_unique_violation(exc) else None
        log.warning("integrity error on %s: %s", request.path, describe_database_error(exc))
        if refusal is not None:  # as the service answers the same request a moment later
            return _domain(refusal())
        return jsonify(error_body("conflict", gettext("The request conflicts with the current state; retry."))), 409

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log_failure(log, "unhandled error on %s", request.path)
        return jsonify(error_body("internal_error", gettext("Internal error."))), 500

    @app.errorhandler(DBAPIError)
    def _bad_value(exc: DBAPIError) -> Any:
        # A backstop: the database only says that some value did not fit, not which field held it.
        # The request's unit of work rolls back, as on any 4xx (`jieyou.app._unit_of_work`).
        if sqlstate(exc) not in BAD_VALUE_SQLSTATES:
            return _unexpected(exc)
        log.warning("value refused by the database on %s: %s", request.path, describe_database_error(exc))
        return jsonify(error_body("value_out_of_range", gettext(
            "A value is out of the range the database accepts; the field cannot be named here."))), 422
