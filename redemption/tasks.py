"""Redemption jobs: release expired holds (exactly once) and clear out dead one-time codes."""
from __future__ import annotations

import datetime as dt
from typing import Any

from celery.schedules import crontab
from sqlalchemy import delete
from sqlalchemy.orm import Session

from infra.auth import SYSTEM
from infra.db import utcnow
from infra.tasks import celery
from redemption.models import OneTimeCode
from redemption.services import counter
from redemption.services.config import counter_config


@celery.task(name="redemption.expire_holds")
def expire_holds(session: Session) -> dict[str, Any]:
    total = 0
    while (done := counter.expire_holds(session, SYSTEM, counter_config())):
        total += done
    return {"released": total}


@celery.task(name="redemption.purge_codes")
def purge_codes(session: Session) -> dict[str, Any]:
    """Codes are short-lived secrets, not records: drop those dead for a day."""
    result = session.execute(delete(OneTimeCode).where(OneTimeCode.expires_at < utcnow() - dt.timedelta(days=1)))
    return {"purged": result.rowcount}


BEAT_SCHEDULE = {
    "redemption-expire-holds": {"task": "redemption.expire_holds", "schedule": crontab(minute="*")},
    "redemption-purge-codes": {"task": "redemption.purge_codes", "schedule": crontab(hour=3, minute=10)},
}
