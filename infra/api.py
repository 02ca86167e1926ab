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
