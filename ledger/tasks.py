"""Scheduled integrity jobs. Each is keyed by its period so a double fire records one run."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery.schedules import crontab
from sqlalchemy.orm import Session

from infra.tasks import celery
from ledger.services import integrity

log = logging.getLogger(__name__)


@celery.task(name="ledger.verify")
def verify_ledger(session: Session, period_key: str | None = None) -> dict[str, Any]:
    report = integrity.verify_chains(session)
    integrity.record_check(session, report, period_key)
    if not report.ok:
        log.error("ledger verification found %d problem(s): first %s", len(report.problems), report.problems[0])
    return {"ok": report.ok, "stats": report.stats}


@celery.task(name="ledger.reconcile")
def reconcile_ledger(session: Session, period_key: str | None = None) -> dict[str, Any]:
    report = integrity.reconcile(session)
    integrity.record_check(session, report, period_key)
    if not report.ok:
        log.error("ledger reconciliation found %d problem(s): first %s", len(report.problems), report.problems[0])
    return {"ok": report.ok, "stats": report.stats}


@celery.task(name="ledger.daily_digest")
def daily_digest(session: Session, day: str | None = None) -> dict[str, Any]:
    when = dt.date.fromisoformat(day) if day else dt.datetime.now(dt.timezone.utc).date()
    digest = integrity.record_digest(session, when)
    return integrity.export_digest(digest)


@celery.task(name="ledger.scheduled_checks")
def scheduled_checks(session: Session) -> dict[str, Any]:
    """Nightly: verify chains, reconcile, and snapshot the heads, once per day."""
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    out = {"verify": verify_ledger.run(session, today), "reconcile": reconcile_ledger.run(session, today)}
    integrity.record_digest(session, dt.date.fromisoformat(today))
    return out


BEAT_SCHEDULE = {
    "ledger-nightly-checks": {"task": "ledger.scheduled_checks", "schedule": crontab(hour=2, minute=30)},
}
