"""The county's calendar: "today" is the date in Asia/Shanghai, eight hours ahead of UTC."""
from __future__ import annotations

import datetime as dt

from flask import Flask

from infra.clock import local_date, local_midnight, local_timezone

UTC = dt.timezone.utc


def test_the_countys_day_begins_eight_hours_before_utcs():
    assert local_date(dt.datetime(2026, 3, 10, 15, 59, tzinfo=UTC), "Asia/Shanghai") == dt.date(2026, 3, 10)
    assert local_date(dt.datetime(2026, 3, 10, 17, 30, tzinfo=UTC), "Asia/Shanghai") == dt.date(2026, 3, 11)
    assert local_midnight(dt.date(2026, 3, 11), "Asia/Shanghai") == dt.datetime(2026, 3, 10, 16, tzinfo=UTC)


def test_the_zone_is_the_apps_setting(app: Flask):
    settings = app.config["SETTINGS"]
    with app.app_context():
        assert local_timezone() == settings.local_timezone == "Asia/Shanghai"
        before, settings.local_timezone = settings.local_timezone, "UTC"
        try:
            assert local_date(dt.datetime(2026, 3, 10, 17, 30, tzinfo=UTC)) == dt.date(2026, 3, 10)
        finally:
            settings.local_timezone = before
