"""The county's calendar. Work dates, rule versions, grade windows and redemption limits all
follow the county's day (Asia/Shanghai, eight hours ahead of UTC), so "today" is never the UTC
date: from 00:00 to 08:00 local time the two differ."""
from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

from infra.config import Settings


def local_timezone() -> str:
    """The app's `local_timezone` setting; outside the app (tasks, scripts, tests) the environment's."""
    if has_app_context():
        return str(current_app.config["SETTINGS"].local_timezone)
    return os.environ.get("LOCAL_TIMEZONE") or Settings.local_timezone


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_date(now: dt.datetime | None = None, timezone: str | None = None) -> dt.date:
    """The county's calendar day at `now` (an aware datetime; default: this instant)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(_zone(timezone or local_timezone())).date()


def local_midnight(day: dt.date, timezone: str | None = None) -> dt.datetime:
    """The instant the county's `day` begins, for windows counted in whole local days."""
    return dt.datetime.combine(day, dt.time(), tzinfo=_zone(timezone or local_timezone()))
