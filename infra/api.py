"""API building blocks shared by every domain: a Blueprint whose parser refuses unknown fields
everywhere (query strings included), and base schemas for loading and dumping."""
from __future__ import annotations

from typing import Any

import flask
import flask_smorest
from marshmallow import RAISE, Schema, fields, validate
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

_JSON_BODY = "jieyou.json_body"


def json_body(req: flask.Request) -> Any:
    """The request's JSON body, parsed once per request: webargs' `missing` when the request is not
    JSON; `json.JSONDecodeError` (a ValueError) when it is not valid JSON, as webargs raises it.
    Why: the counter's per-code rate limit reads the code before the view, and webargs parsed the
    body a second time."""
    environ = req.environ
    if _JSON_BODY not in environ:
        environ[_JSON_BODY] = core.parse_json(req.get_data(cache=True)) if is_json_request(req) else core.missing
    return environ[_JSON_BODY]


class StrictParser(FlaskParser):
    """Unknown fields in the body or the query string are an error naming the field."""

    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {
        "json": RAISE, "form": RAISE, "json_or_form": RAISE, "querystring": RAISE, "query": RAISE,
        "headers": None, "cookies": None, "files": RAISE,
    }

    def _raw_load_json(self, req: flask.Request) -> Any:
        return json_body(req)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()

    def arguments(self, schema: type[Schema] | Schema, **kwargs: Any) -> Any:
        """As flask-smorest's, with a schema class made an instance once, here: given a class,
        webargs builds a new instance (and copies every field) on every request."""
        return super().arguments(schema() if isinstance(schema, type) else schema, **kwargs)


class LoadSchema(Schema):
    """Input: strict, unknown fields rejected."""

    class Meta:
        unknown = RAISE


class DumpSchema(Schema):
    """Output only; never used to load."""


class IdempotentArgs(LoadSchema):
    idempotency_key = fields.String(load_default=None, validate=validate.Length(min=8, max=100),
                                    metadata={"description": "Retry with the same key to get the same result."})


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    return type(name, (DumpSchema,), {
        "items": fields.List(fields.Nested(item)),
        "next": fields.Integer(allow_none=True, metadata={"description": "Pass as `after`/`before` for the next page."}),
    })
