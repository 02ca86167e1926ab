"""Every input schema of the app, for tests that check a rule holds for all of them, now and later."""
from __future__ import annotations

from marshmallow import Schema

from infra.api import LoadSchema


def load_schemas() -> list[type[Schema]]:
    import jieyou.app  # noqa: F401  every package's schemas, imported by the app

    found, todo = [], [LoadSchema]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found
