"""Scoring fixtures: a frozen clock for the county's calendar."""
from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable

import pytest

from infra import clock
from scoring.services import submissions


@pytest.fixture
def county_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[dt.datetime], None]:
    """`county_clock(at)` freezes "now" at the aware datetime `at` wherever the county's date is
    taken (`infra.clock` and the submission check), so tests can stand at 01:30 in Shanghai,
    when UTC is still on the day before."""
    def freeze(at: dt.datetime) -> None:
        class Frozen(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
                return at if tz is None else at.astimezone(tz)

        frozen = types.SimpleNamespace(datetime=Frozen, date=dt.date, time=dt.time, timedelta=dt.timedelta,
                                       timezone=dt.timezone)
        for module in (clock, submissions):
            monkeypatch.setattr(module, "dt", frozen)
    return freeze
