"""API building blocks shared by every domain: a Blueprint whose parser refuses unknown fields
everywhere (query strings included), and base schemas for loading and dumping."""
from __future__ import annotations

from typing import Any

import flask_smorest
from marshmallow import RAISE, Schema, fields, validate
from webargs.flaskparser import FlaskParser


class StrictParser(FlaskParser):
    """Unknown fields in the body or the query string are an error naming the field."""

    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {
        "json": RAISE, "form": RAISE, "json_or_form": RAISE, "querystring": RAISE, "query": RAISE,
        "headers": None, "cookies": None, "files": RAISE,
    }


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


class LoadSchema(Schema):
    """Input: strict, unknown fields rejected."""

    class Meta:
        unknown = RAISE


class DumpSchema(Schema):
    """Output only; never used to load."""


class PageArgs(LoadSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    after = fields.Integer(load_default=None, validate=validate.Range(min=1),
                           metadata={"description": "Cursor returned as `next` by the previous page."})


class IdempotentArgs(LoadSchema):
    idempotency_key = fields.String(load_default=None, validate=validate.Length(min=8, max=100),
                                    metadata={"description": "Retry with the same key to get the same result."})


def page(items: list[Any], next_cursor: int | None) -> dict[str, Any]:
    return {"items": items, "next": next_cursor}


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    return type(name, (DumpSchema,), {
        "items": fields.List(fields.Nested(item)),
        "next": fields.Integer(allow_none=True, metadata={"description": "Pass as `after`/`before` for the next page."}),
    })


class ErrorSchema(DumpSchema):
    class Body(DumpSchema):
        code = fields.String(metadata={"description": "Stable machine-readable code"})
        message = fields.String(metadata={"description": "Human-readable, in the caller's language"})
        details = fields.Dict(metadata={"description": "Per-field messages"})

    error = fields.Nested(Body)
