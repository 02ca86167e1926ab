"""An import task that fails for a reason no row explains (a bug, the database lost mid-run) is
not redelivered: Celery acks a failed task. The job must then say so, not stay queued for ever
with its file refused as a duplicate of itself."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from scoring import tasks
from scoring.models import Contribution, ImportJob
from scoring.services import imports
from tests import factories as f

pytestmark = pytest.mark.concurrency
HEADER = "indicator_code,work_date,participant_phones,description,quantity\n"


def _upload(factory: Any, app: Any, tag: str) -> tuple[int, bytes, Any]:
    storage = Path(app.config["SETTINGS"].instance_dir) / "imports"
    with factory() as s:
        tree = f.region_tree(s)
        a, b = f.participant(s, tree.grid_a), f.participant(s, tree.grid_a)
        clerk = f.staff(s, "clerk", tree.town_a)
        body = (HEADER + f"PRO-3,2026-11-03,{a.phone},入户宣讲 {tag},6\n"
                f"PRO-3,2026-11-04,{b.phone},入户宣讲 {tag},2\n").encode()
        job = imports.create_job(s, clerk, f"{tag}.csv", body, storage)
        s.commit()
        return job.id, body, clerk


def test_an_import_that_crashes_is_marked_failed_and_its_file_may_be_uploaded_again(committed_factory, app,
                                                                                    monkeypatch):
    job_id, body, clerk = _upload(committed_factory, app, f"crash-{id(object())}")
    calls: list[int] = []
    real_submit = imports.submit

    def buggy_submit(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("a bug on the second row")
        return real_submit(*args, **kwargs)

    monkeypatch.setattr(imports, "submit", buggy_submit)
    with pytest.raises(RuntimeError):
        tasks.run_import(job_id)  # as the worker runs it: the failure is still Celery's to log
    with committed_factory() as s:
        job = s.get(ImportJob, job_id)
        assert job.status == "failed" and job.imported_rows == 0 and job.finished_at is not None
        assert "RuntimeError" in job.errors[0]["reason"]
        assert s.scalar(select(func.count()).select_from(Contribution).where(Contribution.import_id == job_id)) == 0
    monkeypatch.setattr(imports, "submit", real_submit)
    storage = Path(app.config["SETTINGS"].instance_dir) / "imports"
    with committed_factory() as s:  # the same file again: taken, not a 409 naming the dead job
        again = imports.create_job(s, clerk, "again.csv", body, storage)
        s.commit()
    assert tasks.run_import(again.id) == {"status": "done", "imported": 2, "errors": 0}


def test_a_crashed_delivery_leaves_the_job_to_one_still_importing_it(committed_factory, app):
    """With another delivery holding the job's claim (importing it now), a failed one marks
    nothing: the other's outcome stands."""
    job_id, _body, _clerk = _upload(committed_factory, app, f"held-{id(object())}")
    with committed_factory() as holder:
        holder.execute(select(func.pg_advisory_xact_lock(imports.JOB_LOCK, func.hashtext(str(job_id)))))
        with committed_factory() as s:
            imports.abandon(s, job_id, RuntimeError("boom"))
            s.commit()
        holder.commit()
    with committed_factory() as s:
        assert s.get(ImportJob, job_id).status == "queued"


def test_an_import_whose_task_was_lost_is_run_by_the_sweep(committed_factory, app):
    """The upload commits its job, then enqueues its task: if the broker refused it then (down, or
    the embedded process stopped before its job ran), nothing ran it, the job said queued for
    ever and the file was a 409 duplicate. The scheduled sweep runs such jobs again; a recent job,
    or one a run is importing now, it leaves alone."""
    from sqlalchemy import update

    from infra.db import utcnow
    lost, _body, _clerk = _upload(committed_factory, app, f"lost-{id(object())}")
    busy, _body, _clerk = _upload(committed_factory, app, f"busy-{id(object())}")
    recent, _body, _clerk = _upload(committed_factory, app, f"recent-{id(object())}")
    with committed_factory() as s:
        s.execute(update(ImportJob).where(ImportJob.id.in_([lost, busy]))
                  .values(created_at=utcnow() - tasks.STALE_IMPORT * 2))
        s.commit()
    with committed_factory() as holder:  # a run importing `busy` right now
        holder.execute(select(func.pg_advisory_xact_lock(imports.JOB_LOCK, func.hashtext(str(busy)))))
        assert tasks.requeue_stale_imports()["requeued"] >= 1
        holder.commit()
    with committed_factory() as s:
        statuses = {job_id: s.get(ImportJob, job_id).status for job_id in (lost, busy, recent)}
    assert statuses == {lost: "done", busy: "queued", recent: "queued"}
    assert "scoring.requeue_stale_imports" in {e["task"] for e in tasks.BEAT_SCHEDULE.values()}
