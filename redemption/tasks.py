"""Redemption jobs: release expired holds (exactly once) and clear out dead one-time codes."""
from __future__ import annotations

import datetime as dt
from typing import Any

from celery.schedules import crontab
from sqlalchemy import delete
from sqlalchemy.orm import Session

from infra.auth import SYSTEM
from infra.db import db, utcnow
from infra.tasks import celery
from redemption.models import OneTimeCode
from redemption.services import counter
from redemption.services.config import counter_config


@celery.task(name="redemption.expire_holds")
def expire_holds(session: Session, batch: int = 500) -> dict[str, Any]:
    """Release every hold past its time. Each batch is a unit of work of its own, committed before
    the next is taken (the task's own session is left unused, as the award job leaves its): after
    downtime a backlog of thousands then holds each participant's balance row for one batch, not
    the whole run, and a run that dies keeps the batches it finished (release is idempotent)."""
    total = 0
    while True:
        with db.unit_of_work() as batch_session:
            done = counter.expire_holds(batch_session, SYSTEM, counter_config(), limit=batch)
        total += done
        if done < batch:
            break
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
