"""API building blocks shared by every domain: a Blueprint whose parser refuses unknown fields
everywhere (query strings included), base schemas for loading and dumping, and the input fields
whose range is the database column's (so that a bad value is a 422 naming the field, never a 500
from PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import json
import numbers
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import flask
import flask_smorest
from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from webargs.multidictproxy import MultiDictProxy

from infra.openapi import document_operation
from infra.security import CONTROL_CHARACTER_ERROR, CONTROL_CHARACTERS

_JSON_BODY = "jieyou.json_body"
F = TypeVar("F", bound=Callable[..., Any])


def json_body(req: flask.Request) -> Any:
    """The request's JSON body, parsed once per request: webargs' `missing` when the request is not
    JSON; `json.JSONDecodeError` (a ValueError) when it is not valid JSON, as webargs raises it.
    Why: the counter's per-code rate limit reads the code before the view, and webargs parsed the
    body a second time."""
    environ = req.environ
    if _JSON_BODY not in environ:
        environ[_JSON_BODY] = _parse_json(req.get_data(cache=True)) if is_json_request(req) else core.missing
    return environ[_JSON_BODY]


def _parse_json(data: bytes) -> Any:
    """webargs' parse_json, with the other ways `json.loads` refuses a body (a number of more than
    4300 digits is a plain ValueError, nesting past the stack a RecursionError) raised as the
    JSONDecodeError that webargs answers with a 400, not left to become a 500."""
    try:
        return core.parse_json(data)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:
        raise json.JSONDecodeError(f"Invalid JSON: {type(exc).__name__}", doc="?", pos=0) from exc


class StrictParser(FlaskParser):
    """Unknown fields in the body or the query string are an error naming the field."""

    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {
        "json": RAISE, "form": RAISE, "json_or_form": RAISE, "querystring": RAISE, "query": RAISE,
        "headers": None, "cookies": None, "files": RAISE,
    }

    def _raw_load_json(self, req: flask.Request) -> Any:
        return json_body(req)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, strict about unknown fields, whose spec documents each
    operation's credentials and error responses from its decorators (`infra.openapi`)."""

    ARGUMENTS_PARSER = StrictParser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._doc_name = self.name
        self._prepare_doc_cbks.append(self._prepare_access_doc)  # last: after arguments and responses

    def _store_endpoint_docs(self, endpoint: str, obj: Any, parameters: Any, tags: Any, **options: Any) -> None:
        super()._store_endpoint_docs(endpoint, obj, parameters, tags, **options)
        for method, doc in self._docs[endpoint].items():
            if method != "parameters":
                doc["endpoint"] = endpoint  # for `_prepare_access_doc`, which is not told it

    def register_views_in_doc(self, api: Any, app: flask.Flask, spec: Any, *, name: str, parameters: Any) -> None:
        self._doc_name = name
        super().register_views_in_doc(api, app, spec, name=name, parameters=parameters)

    @staticmethod
    def errors(*statuses: int) -> Callable[[F], F]:
        """Document error statuses that a view's service answers with and its decorators do not
        show (a code in the body that names nothing is a 404); `infra.openapi` derives the rest."""

        def decorator(view: F) -> F:
            apidoc = dict(getattr(view, "_apidoc", {}))  # not the dict a wrapped view may share
            apidoc["errors"] = sorted({*apidoc.get("errors", ()), *statuses})
            view._apidoc = apidoc  # type: ignore[attr-defined]
            return view

        return decorator

    def _prepare_access_doc(self, doc: dict[str, Any], doc_info: dict[str, Any], *, app: flask.Flask,
                            method: str, **_kwargs: Any) -> dict[str, Any]:
        """Security and error responses, from the view as registered (its class's decorators applied)."""
        endpoint = f"{self._doc_name}.{doc_info['endpoint']}"
        rule = next(app.url_map.iter_rules(endpoint))
        return document_operation(doc, doc_info, view=app.view_functions[endpoint], rule=rule, method=method)

    def arguments(self, schema: type[Schema] | Schema, **kwargs: Any) -> Any:
        """As flask-smorest's, with a schema class made an instance once, here: given a class,
        webargs builds a new instance (and copies every field) on every request."""
        return super().arguments(schema() if isinstance(schema, type) else schema, **kwargs)


INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1  # PostgreSQL INTEGER: points, fen, limits, caps, versions
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1  # PostgreSQL BIGINT: ids and cursors


WHOLE_NUMBER_ERROR = "Must be a whole number."
_DIGITS = re.compile(r"[+-]?[0-9]+\Z")


class Integer(fields.Integer):
    """A whole number, as every integer input of ours is loaded: a JSON integer, or in a query
    string or form (where every value is text) its ASCII decimal digits; a fraction, a float, a
    boolean or any text in a JSON body ("+5" included) is this field's 422. Why: marshmallow's
    default Integer truncates, so 2.9 points were refunded as 2 and 7.99 held as 7, and its
    `strict` one refuses the text of every query string. Use it (or Int4, Int8, Id, which are it)
    for every integer a schema loads."""

    default_error_messages = {"invalid": WHOLE_NUMBER_ERROR}

    def __init__(self, **kwargs: Any) -> None:
        if "strict" in kwargs:
            raise TypeError("infra.api.Integer is always strict: drop `strict`")
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> int:
        # webargs hands query strings and forms over as a MultiDictProxy, a JSON body as what
        # json.loads made of it: text stands for a number only in the former.
        if isinstance(value, str) and not isinstance(data, MultiDictProxy):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, str) and _DIGITS.match(value):
            try:
                return int(value)
            except ValueError:  # more digits than Python converts (4300): far past any column
                raise self.make_error("too_large", input=value) from None
        raise self.make_error("invalid", input=value)


class Int4(Integer):
    """An integer stored in an INTEGER column: its range is the column's unless narrowed, so that
    PostgreSQL's `integer out of range` (a 500) becomes this field's 422."""

    def __init__(self, *, min: int = INT4_MIN, max: int = INT4_MAX, **kwargs: Any) -> None:
        super().__init__(validate=validate.Range(min=min, max=max), **kwargs)


class Int8(Integer):
    """An integer stored in (or compared with) a BIGINT column; as Int4, for `bigint out of range`."""

    def __init__(self, *, min: int = INT8_MIN, max: int = INT8_MAX, **kwargs: Any) -> None:
        super().__init__(validate=validate.Range(min=min, max=max), **kwargs)


class Id(Int8):
    """A row id or a page cursor: 1 to 2**63-1 unless `min` says otherwise."""

    def __init__(self, *, min: int = 1, **kwargs: Any) -> None:
        super().__init__(min=min, **kwargs)


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 moment with its zone, loaded as UTC. Why: the database layer converts to UTC
    anyway, and near year 1 or 9999 that conversion overflows (0001-01-01T00:00+14:00 is in year
    0); doing it here makes such a moment this field's 422 instead of a 500."""

    default_error_messages = {"out_of_range": "Out of the supported date range."}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> dt.datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(dt.timezone.utc)
        except OverflowError as exc:
            raise self.make_error("out_of_range") from exc


MAX_DEPTH = 16  # no schema of ours nests half as deep


def control_character_errors(value: Any, depth: int = 0) -> Any:
    """Errors for every string in `value` (keys included, at any depth) holding a control
    character, shaped as marshmallow shapes nested errors; None when there is none. Input nested
    deeper than MAX_DEPTH is an error too, so that the walk cannot exhaust the stack."""
    if isinstance(value, str):
        return [CONTROL_CHARACTER_ERROR] if CONTROL_CHARACTERS.search(value) else None
    if not isinstance(value, (Mapping, list, tuple)):
        return None
    if depth >= MAX_DEPTH:
        return ["Nested too deeply."]
    if isinstance(value, Mapping):
        errors: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and CONTROL_CHARACTERS.search(key):
                errors[key] = [CONTROL_CHARACTER_ERROR]
            elif (bad := control_character_errors(item, depth + 1)) is not None:
                errors[key] = bad
        return errors or None
    found = {index: bad for index, item in enumerate(value)
             if (bad := control_character_errors(item, depth + 1)) is not None}
    return found or None


class LoadSchema(Schema):
    """Input: strict, unknown fields rejected, no control characters in any string."""

    class Meta:
        unknown = RAISE

    @pre_load
    def _refuse_control_characters(self, data: Any, **_kwargs: Any) -> Any:
        """Here once for every schema, body and query string alike: PostgreSQL refuses NUL in text
        (a 500 from any field that reaches it), and no field of ours means to carry controls."""
        errors = control_character_errors(data)
        if errors:
            raise ValidationError(errors)
        return data


class DumpSchema(Schema):
    """Output only; never used to load."""


# Characters that show nothing, beyond the blanks `str.isspace` knows: letters and symbols drawn
# empty (the Hangul fillers, the blank Braille pattern), and marks that change nothing on their own
# (the combining grapheme joiner, Khmer's inherent vowels, Mongolian and other variation selectors).
# Every format character (Unicode category Cf: zero-width space, BOM, soft hyphen, the Mongolian
# vowel separator, word joiner, direction controls...) is invisible too (`invisible`).
_DRAWN_EMPTY = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_SELECTORS = frozenset("\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f")
# Explicit text-direction controls: in a name, an override (U+202E) shows "梅秀张" for "张秀梅"
# in every list that prints it.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Format characters that shape letters in some scripts (Persian, Indic, emoji sequences; Mongolian's
# vowel separator), which a name may need: blanks to `Words`, allowed by `Name`.
_SHAPING = frozenset("\u200c\u200d\u180e")


def invisible(char: str) -> bool:
    """Whether the character shows nothing: a blank, a control or format character, or one of
    those drawn empty or only selecting another's form."""
    return (char.isspace() or char in _DRAWN_EMPTY or char in _SELECTORS or unicodedata.category(char) in ("Cf", "Cc")
            or "\ufe00" <= char <= "\ufe0f" or "\U000e0100" <= char <= "\U000e01ef")


def hidden_in_name(char: str) -> bool:
    """What a name may not hold: direction controls, and the invisible characters that are neither
    blanks (`Words` counts those) nor needed to write some name (joiners, variation selectors)."""
    return char in BIDI_CONTROLS or char in _DRAWN_EMPTY or (
        unicodedata.category(char) in ("Cf", "Cc") and char not in _SHAPING)


def visible_length(value: str) -> int:
    return sum(1 for char in value if not invisible(char))


class Words(validate.Validator):
    """At least `min` characters that are not blanks: a reason or a note "in words". Why: a length
    check alone let a reason of two spaces (or ideographic spaces) through, which the ledger then
    refused when the posting was finally made, after an approver had been asked to decide it; and
    stripping the blanks let two zero-width spaces (or Hangul fillers, blank Braille...) through as
    a reason nobody can read. Every invisible character counts as a blank (`invisible`)."""

    def __init__(self, min: int = 2) -> None:
        self.min = min

    def __call__(self, value: str) -> str:
        if visible_length(value) < self.min:
            raise ValidationError(f"Write at least {self.min} characters, not only blanks.")
        return value


INVISIBLE_IN_NAME_ERROR = "Must not contain invisible or text-direction characters."


class Name(validate.Validator):
    """A person's or a place's name holds no invisible characters and no direction controls: the
    name is shown, searched and masked (`mask_name`) as written, and 张秀梅 with a zero-width space
    inside is not found by "张秀梅" while looking the same. A middle dot (阿依古丽·买买提), blanks between words and
    what some scripts need to write a name (joiners, variation selectors) stay."""

    def __call__(self, value: str) -> str:
        if any(hidden_in_name(char) for char in value):
            raise ValidationError(INVISIBLE_IN_NAME_ERROR)
        return value


def words(*, min: int = 2, max: int) -> list[validate.Validator]:
    """The validators of a free-text reason: its length, and not only blanks."""
    return [validate.Length(min=min, max=max), Words(min)]


def names(*, max: int) -> list[validate.Validator]:
    """The validators of a name: at least one visible character, at most `max`, nothing hidden."""
    return [*words(min=1, max=max), Name()]


class IdempotentArgs(LoadSchema):
    idempotency_key = fields.String(load_default=None, validate=validate.Length(min=8, max=100),
                                    metadata={"description": "Retry with the same key to get the same result."})


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    return type(name, (DumpSchema,), {
        "items": fields.List(fields.Nested(item)),
        "next": fields.Integer(allow_none=True, metadata={"description": "Pass as `after`/`before` for the next page."}),
    })
