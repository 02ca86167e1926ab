"""An import task that fails for a reason no row explains (a bug, the database lost mid-run) is
not redelivered: Celery acks a failed task. The job must then say so, not stay queued for ever
with its file refused as a duplicate of itself."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from infra.clock import local_date
from scoring import tasks
from scoring.models import Contribution, ImportJob
from scoring.services import imports
from tests import factories as f

pytestmark = pytest.mark.concurrency
HEADER = "indicator_code,work_date,participant_phones,description,quantity\n"
# Work dates inside the submission window (CONTRIBUTION_MAX_AGE_DAYS), in the rows' order.
D3, D4 = ((local_date() - dt.timedelta(days=n)).isoformat() for n in (7, 6))


def _upload(factory: Any, app: Any, tag: str) -> tuple[int, bytes, Any]:
    storage = Path(app.config["SETTINGS"].instance_dir) / "imports"
    with factory() as s:
        tree = f.region_tree(s)
        a, b = f.participant(s, tree.grid_a), f.participant(s, tree.grid_a)
        clerk = f.staff(s, "clerk", tree.town_a)
        body = (HEADER + f"PRO-3,{D3},{a.phone},入户宣讲 {tag},6\n"
                f"PRO-3,{D4},{b.phone},入户宣讲 {tag},2\n").encode()
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


class WorkerKilled(BaseException):
    """What a run sees of its worker dying mid-import (the kernel's OOM killer, say): nothing runs
    after it, not even `abandon`; the broker redelivers the task, or the sweep sends it again."""


def _kill_runs_of(monkeypatch: Any, job_id: int) -> list[int]:
    """Every run of `job_id` from now on dies with its worker; the runs that got that far are listed."""
    runs: list[int] = []
    real_run = imports.run_import

    def run_import(session: Any, job: ImportJob, *args: Any, **kwargs: Any) -> Any:
        if job.id == job_id:
            runs.append(job_id)
            raise WorkerKilled()
        return real_run(session, job, *args, **kwargs)

    monkeypatch.setattr(imports, "run_import", run_import)
    return runs


def _make_stale(factory: Any, job_id: int) -> None:
    from sqlalchemy import update

    from infra.db import utcnow
    with factory() as s:
        s.execute(update(ImportJob).where(ImportJob.id == job_id).values(created_at=utcnow() - tasks.STALE_IMPORT * 2))
        s.commit()


def test_a_file_that_kills_the_worker_is_given_up_on_with_a_reason_not_run_for_ever(committed_factory, app,
                                                                                     monkeypatch):
    """Each sweep ran the stale job again, each run killed its worker, and so on every ten minutes
    for ever. Each run is now counted before it imports; once `import_max_attempts` have started
    without finishing, the sweep marks the job failed, saying why in the clerk's language, and
    sends it no more."""
    limit = app.config["SETTINGS"].import_max_attempts
    assert limit == 3  # the default
    job_id, body, clerk = _upload(committed_factory, app, f"poison-{id(object())}")
    runs = _kill_runs_of(monkeypatch, job_id)
    with pytest.raises(WorkerKilled):
        tasks.run_import(job_id)  # the upload's own task
    _make_stale(committed_factory, job_id)
    for _ in range(limit - 1):  # below the cap the sweep sends it again (and it dies again)
        with pytest.raises(WorkerKilled):
            tasks.requeue_stale_imports()
    assert len(runs) == limit
    assert tasks.requeue_stale_imports()["failed"] >= 1  # returns: ours was not sent to die again
    tasks.requeue_stale_imports()  # nor on the next sweep
    assert len(runs) == limit
    with committed_factory() as s:
        job = s.get(ImportJob, job_id)
        assert (job.status, job.attempts, job.imported_rows) == ("failed", limit, 0) and job.finished_at is not None
        assert [(e["line"], e["field"], e["code"]) for e in job.errors] == [(0, "file", "too_many_attempts")]
        assert s.scalar(select(func.count()).select_from(Contribution).where(Contribution.import_id == job_id)) == 0
        headers = f.bearer(s, "staff", clerk.id)
        s.commit()
    client = app.test_client()
    shown = client.get(f"/api/v1/admin/imports/{job_id}", headers=headers)
    assert shown.status_code == 200 and shown.json["status"] == "failed"
    assert shown.json["errors"][0]["reason"].startswith("该导入已启动 3 次均未完成")
    english = client.get(f"/api/v1/admin/imports/{job_id}", headers={**headers, "Accept-Language": "en"})
    assert english.json["errors"][0]["reason"].startswith("The import was started 3 times and never finished")
    monkeypatch.undo()
    storage = Path(app.config["SETTINGS"].instance_dir) / "imports"
    with committed_factory() as s:  # failed, its file may be uploaded again once mended
        again = imports.create_job(s, clerk, "again.csv", body, storage)
        s.commit()
    assert tasks.run_import(again.id) == {"status": "done", "imported": 2, "errors": 0}


def test_a_task_redelivered_after_its_worker_died_stops_at_the_cap(committed_factory, app, monkeypatch):
    """The broker redelivers the task of a worker that died (reject_on_worker_lost), without the
    sweep: the count stops that loop too, and the run past the cap imports nothing."""
    limit = app.config["SETTINGS"].import_max_attempts
    job_id, _body, _clerk = _upload(committed_factory, app, f"redelivered-{id(object())}")
    runs = _kill_runs_of(monkeypatch, job_id)
    for _ in range(limit):
        with pytest.raises(WorkerKilled):
            tasks.run_import(job_id)
    assert tasks.run_import(job_id) == {"failed": job_id} and len(runs) == limit
    with committed_factory() as s:
        job = s.get(ImportJob, job_id)
        assert job.status == "failed" and job.errors[0]["code"] == "too_many_attempts"
        assert job.errors[0]["attempts"] == limit


def test_below_the_cap_a_stale_job_is_still_run_again(committed_factory, app, monkeypatch):
    """One worker died on the job (a deploy, not the file): the sweep runs it again and it imports."""
    job_id, _body, _clerk = _upload(committed_factory, app, f"once-{id(object())}")
    runs = _kill_runs_of(monkeypatch, job_id)
    with pytest.raises(WorkerKilled):
        tasks.run_import(job_id)
    assert runs == [job_id]
    monkeypatch.undo()
    _make_stale(committed_factory, job_id)
    assert tasks.requeue_stale_imports()["requeued"] >= 1
    with committed_factory() as s:
        job = s.get(ImportJob, job_id)
        assert (job.status, job.imported_rows, job.attempts) == ("done", 2, 2)
