"""Scheduled integrity jobs. Each is keyed by its period so a double fire records one run.

Days are the county's (`infra.clock.local_date`), as a clerk running `jieyou ledger digest` names
them: a UTC label would let a morning's manual digest take the day the 02:30 job should snapshot."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery.schedules import crontab
from sqlalchemy.orm import Session

from infra.clock import local_date
from infra.tasks import celery
from ledger.services import integrity

log = logging.getLogger(__name__)


def _verify(session: Session, period_key: str | None) -> integrity.Report:
    report = integrity.verify_chains(session)
    integrity.record_check(session, report, period_key)
    if not report.ok:
        log.error("ledger verification found %d problem(s): first %s", len(report.problems), report.problems[0])
    return report


@celery.task(name="ledger.verify")
def verify_ledger(session: Session, period_key: str | None = None) -> dict[str, Any]:
    report = _verify(session, period_key)
    return {"ok": report.ok, "stats": report.stats}


@celery.task(name="ledger.reconcile")
def reconcile_ledger(session: Session, period_key: str | None = None) -> dict[str, Any]:
    report = integrity.reconcile(session)
    integrity.record_check(session, report, period_key)
    if not report.ok:
        log.error("ledger reconciliation found %d problem(s): first %s", len(report.problems), report.problems[0])
    return {"ok": report.ok, "stats": report.stats}


def _refused(exc: integrity.ChainsDoNotVerify) -> dict[str, Any]:
    """A digest refused because the chains fail: the result says so (it returns, not raises, so
    that the failed check it records is committed and shown on the status page)."""
    log.error("ledger digest refused: %s", exc)
    return {"day": exc.day.isoformat(), "recorded": False, "refused": "chains_do_not_verify",
            "problems": len(exc.report.problems), "first_problem": exc.report.problems[0]}


@celery.task(name="ledger.daily_digest")
def daily_digest(session: Session, day: str | None = None) -> dict[str, Any]:
    """Record and export the heads for `day` (YYYY-MM-DD; default the county's today), once they
    verify (`integrity.record_digest`); if they do not, the failed verification is recorded and
    the result names the first problem instead of a digest."""
    today = local_date()
    when = dt.date.fromisoformat(day) if day else today
    integrity.refuse_day_to_come(when, today)
    try:
        digest = integrity.record_digest(session, when)
    except integrity.ChainsDoNotVerify as exc:
        integrity.record_check(session, exc.report)
        return _refused(exc)
    return integrity.export_digest(digest)


@celery.task(name="ledger.scheduled_checks")
def scheduled_checks(session: Session) -> dict[str, Any]:
    """Nightly: verify chains, reconcile, and snapshot the heads, once per day. The digest takes
    the heads this run's verification read and checked: verify reads every entry, once a night."""
    today = local_date().isoformat()  # beat fires at 02:30 local time, on this same calendar
    verify = _verify(session, today)
    out = {"verify": {"ok": verify.ok, "stats": verify.stats}, "reconcile": reconcile_ledger.run(session, today)}
    try:
        digest = integrity.record_digest(session, dt.date.fromisoformat(today), verify)
    except integrity.ChainsDoNotVerify as exc:  # the failed check is recorded above, under today
        out["digest"] = _refused(exc)
    else:
        out["digest"] = {"day": today, "recorded": True, "digest": digest.digest}
    return out


# 02:30 in Celery's timezone, the county's (`init_celery`): the night's run labels the day that
# has just begun in the county, never the UTC day before.
BEAT_SCHEDULE = {
    "ledger-nightly-checks": {"task": "ledger.scheduled_checks", "schedule": crontab(hour=2, minute=30)},
}
