"""Demo data is dated on the county's calendar, whatever hour it is loaded at."""
from __future__ import annotations

import datetime as dt

from infra.clock import local_date
from jieyou.demo import demo_days, month_evening


def test_demo_months_are_the_countys_when_loaded_early_on_the_first():
    """At 01:30 on 1 March 2026 in Shanghai UTC is still on 28 February: "this month" is March, so
    the eleven past months end with February's (UTC's calendar would end them with January's)."""
    today, ends = demo_days(dt.datetime(2026, 2, 28, 17, 30, tzinfo=dt.timezone.utc))
    assert today == dt.date(2026, 3, 1)
    assert ends[0] == dt.date(2025, 4, 30) and ends[-1] == dt.date(2026, 2, 28) and len(ends) == 11


def test_a_months_work_is_verified_on_its_own_last_evening_in_the_county():
    evening = month_evening(dt.date(2026, 2, 28))
    assert evening == dt.datetime(2026, 2, 28, 10, 0, tzinfo=dt.timezone.utc)  # 18:00 in Shanghai
    assert local_date(evening) == dt.date(2026, 2, 28)
