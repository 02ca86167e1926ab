"""Scoring jobs: award contributions whose notice ended (scheduled, idempotent) and bulk imports."""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from celery.schedules import crontab
from flask import current_app
from sqlalchemy import update
from sqlalchemy.orm import Session

from identity.models import StaffUser
from identity.services import staff_principal
from infra.db import after_commit, db, utcnow
from infra.errors import log_failure
from infra.tasks import celery
from scoring.models import ImportJob
from scoring.services import awards, imports

log = logging.getLogger(__name__)


@celery.task(name="scoring.award_due")
def award_due(session: Session, batch: int = 1000) -> dict[str, Any]:
    """Award every contribution whose public notice has ended without an open objection.

    Each batch is a unit of work of its own, committed before the next is claimed (the task's own
    session is left unused): a run over a large backlog then holds each claimed row only for its
    batch, so an objection lodged meanwhile waits for one batch, not the whole run; the claim's
    savepoint stays the transaction's only subtransaction; and a run that dies keeps the batches it
    finished (the next run takes the rest: awarding is idempotent)."""
    shards = current_app.config["SETTINGS"].system_account_shards
    total = 0
    while True:
        with db.unit_of_work() as batch_session:
            done = awards.award_due(batch_session, limit=batch, shards=shards)
        total += done
        if done < batch:
            break
    if total:
        log.info("awarded %d contributions", total)
    return {"awarded": total}


@celery.task(name="scoring.run_import")
def run_import(session: Session, job_id: int) -> dict[str, Any]:
    """Import one uploaded file. The task may be delivered twice (acks_late): `imports.claim` lets
    exactly one run import it, the other waits and does nothing. A run that fails otherwise is not
    run again: its unit of work is rolled back, then the job is marked failed (`imports.abandon`);
    so the import has a unit of work of its own and the task's session is left unused. A run
    that kills its worker is neither: it is counted first (`imports.start_attempt`), and a job
    started `import_max_attempts` times without finishing is marked failed, not run again."""
    try:
        with db.unit_of_work() as start:
            if not imports.start_attempt(start, job_id, _max_attempts()):
                return {"failed": job_id}
        with db.unit_of_work() as work:
            return _import(work, job_id)
    except Exception as exc:
        try:
            with db.unit_of_work() as other:
                imports.abandon(other, job_id, exc)
        except Exception:  # the database is gone, say: the original error is the one to report
            log_failure(log, "import %s could not be marked failed", job_id)
        raise


def _import(session: Session, job_id: int) -> dict[str, Any]:
    job = imports.claim(session, job_id)
    if job is None:
        return {"skipped": job_id}
    user = session.get(StaffUser, job.created_by)
    assert user is not None
    storage = Path(current_app.config["SETTINGS"].instance_dir) / "imports"

    def progress(done: int, total: int) -> None:
        """Written by a transaction of its own, so that staff see it while the import runs. Not on
        SQLite: its one writer at a time is this run, and a second would wait for it."""
        if db.is_sqlite:
            return
        with db.unit_of_work() as other:
            other.execute(update(ImportJob).where(ImportJob.id == job_id)
                          .values(status="importing", processed_rows=done, total_rows=total))

    job = imports.run_import(session, job, staff_principal(user), storage, progress,
                             max_age_days=current_app.config["SETTINGS"].contribution_max_age_days)
    return {"status": job.status, "imported": job.imported_rows, "errors": len(job.errors)}


# An upload's task runs within seconds unless the workers are busy with other imports.
STALE_IMPORT = dt.timedelta(minutes=15)


def _max_attempts() -> int:
    return current_app.config["SETTINGS"].import_max_attempts


@celery.task(name="scoring.requeue_stale_imports")
def requeue_stale_imports(session: Session) -> dict[str, Any]:
    """Run again the imports whose task was lost: the upload commits its job and only then sends
    the task, so a broker that refused it (or an embedded process that stopped first) left the job
    queued for ever, its file refused as a duplicate. Sent after this run commits its claims. A
    job whose runs all died (`import_max_attempts` of them) is marked failed instead: a file that
    kills the worker would otherwise be run again every ten minutes for ever."""
    ids, failed = [], []
    for job_id in imports.stale_jobs(session, utcnow() - STALE_IMPORT):
        job = session.get(ImportJob, job_id, populate_existing=True)
        if job is not None and imports.give_up(session, job, _max_attempts()):
            failed.append(job_id)
            continue
        ids.append(job_id)
        after_commit(session, lambda job_id=job_id: run_import.delay(job_id))
    if ids:
        log.warning("imports %s were not finished after %s: queued again", ids, STALE_IMPORT)
    return {"requeued": len(ids), "failed": len(failed)}


BEAT_SCHEDULE = {
    "scoring-award-due": {"task": "scoring.award_due", "schedule": crontab(minute="*/5")},
    "scoring-requeue-stale-imports": {"task": "scoring.requeue_stale_imports", "schedule": crontab(minute="*/10")},
}
