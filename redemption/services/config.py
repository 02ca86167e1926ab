"""The counter's settings, read from the app's Settings once per call site."""
from __future__ import annotations

import datetime as dt

from flask import current_app

from redemption.services.counter import CounterConfig


def counter_config() -> CounterConfig:
    s = current_app.config["SETTINGS"]
    return CounterConfig(secret_key=s.secret_key, timezone=s.local_timezone,
                         hold_ttl=dt.timedelta(minutes=s.hold_ttl_minutes),
                         refund_window=dt.timedelta(days=s.refund_window_days), shards=s.system_account_shards)
