"""Bulk import under Celery's at-least-once delivery (acks_late, reject_on_worker_lost), on
PostgreSQL with real threads and committed data: a job delivered twice, at the same time or
after it finished, is imported once; the same file uploaded twice at once is taken once."""
from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from infra.clock import local_date
from infra.errors import Conflict
from scoring import tasks
from scoring.models import Contribution, ImportJob
from scoring.services import imports
from tests import factories as f
from tests.concurrency import while_holding

pytestmark = pytest.mark.concurrency
HEADER = "indicator_code,work_date,participant_phones,description,quantity\n"
# Work dates inside the submission window (CONTRIBUTION_MAX_AGE_DAYS), in the rows' order.
D3, D4 = ((local_date() - dt.timedelta(days=n)).isoformat() for n in (7, 6))


def _storage(app: Flask) -> Path:
    return Path(app.config["SETTINGS"].instance_dir) / "imports"


def _queued_job(factory: sessionmaker[Session], app: Flask, tag: str) -> tuple[int, bytes]:
    with factory() as s:
        tree = f.region_tree(s)
        a, b = f.participant(s, tree.grid_a), f.participant(s, tree.grid_a)
        clerk = f.staff(s, "clerk", tree.town_a)
        body = (HEADER + f"PRO-3,{D3},{a.phone},入户宣讲反家暴法 {tag},6\n"
                f"PRO-3,{D4},{b.phone},入户宣讲反家暴法 {tag},2\n").encode()
        job = imports.create_job(s, clerk, f"{tag}.csv", body, _storage(app))
        s.commit()
        return job.id, body


def _imported(factory: sessionmaker[Session], job_id: int) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(Contribution).where(Contribution.import_id == job_id))


def test_a_job_delivered_twice_at_once_is_imported_once(committed_factory, app, monkeypatch):
    job_id, _body = _queued_job(committed_factory, app, "twice-at-once")
    started = threading.Event()
    real_submit = imports.submit

    def slow_submit(*args: Any, **kwargs: Any) -> Any:
        started.set()
        time.sleep(0.4)  # the first delivery is still importing when the second arrives
        return real_submit(*args, **kwargs)

    monkeypatch.setattr(imports, "submit", slow_submit)
    real_run_import = imports.run_import
    monkeypatch.setattr(imports, "run_import",  # progress is the next test's subject
                        lambda session, job, actor, storage, progress=None, **kw: real_run_import(
                            session, job, actor, storage, **kw))
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(tasks.run_import(job_id)))
    first.start()
    assert started.wait(10)
    second = tasks.run_import(job_id)  # the redelivery, while the first still runs
    first.join(30)
    assert not first.is_alive()
    assert second == {"skipped": job_id}
    assert results == [{"status": "done", "imported": 2, "errors": 0}]
    assert _imported(committed_factory, job_id) == 2
    # A delivery after the job finished does nothing either.
    assert tasks.run_import(job_id) == {"skipped": job_id}
    assert _imported(committed_factory, job_id) == 2
    with committed_factory() as s:
        job = s.get(ImportJob, job_id)
        assert job.status == "done" and job.imported_rows == 2 and job.processed_rows == 2


def test_progress_is_written_while_the_claim_is_held(committed_factory, app, monkeypatch):
    """Progress is committed by a unit of work of its own while the run holds its claim: it must
    not wait on the run (it once waited for ever on the job row the run had written), and a
    redelivery arriving meanwhile still does nothing."""
    job_id, _body = _queued_job(committed_factory, app, "progress")
    seen: list[str] = []
    redelivered: list[Any] = []
    redelivery = threading.Thread(target=lambda: redelivered.append(tasks.run_import(job_id)))
    real_run_import = imports.run_import

    def watching(session: Session, job: ImportJob, actor: Any, storage: Path, progress: Any = None,
                 **kwargs: Any) -> ImportJob:
        def report(done: int, total: int) -> None:
            progress(done, total)  # committed on its own
            if seen:  # only the first run looks; a second run (the bug) just goes on
                return
            with committed_factory() as other:
                seen.append(other.get(ImportJob, job_id).status)
            redelivery.start()  # a redelivery in the middle of the run
            time.sleep(0.5)
        return real_run_import(session, job, actor, storage, report, **kwargs)

    monkeypatch.setattr(imports, "run_import", watching)
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(tasks.run_import(job_id)))
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "the progress waited on the run"
    redelivery.join(20)
    assert not redelivery.is_alive()
    assert outcome == [{"status": "done", "imported": 2, "errors": 0}]
    assert seen == ["importing"] and redelivered == [{"skipped": job_id}]
    assert _imported(committed_factory, job_id) == 2


def test_the_same_file_uploaded_twice_at_once_is_taken_once(committed_factory, app):
    """A double click on the upload button: the second request waits for the first, then is a 409
    naming it."""
    with committed_factory() as s:
        tree = f.region_tree(s)
        a = f.participant(s, tree.grid_a)
        clerk = f.staff(s, "clerk", tree.town_a)
        s.commit()
    body = (HEADER + f"PRO-3,{D3},{a.phone},双击上传 {a.id},6\n").encode()
    first, refused = while_holding(
        committed_factory, lambda s: imports.create_job(s, clerk, "grid-export.csv", body, _storage(app)),
        lambda s: imports.create_job(s, clerk, "again.csv", body, _storage(app)))
    assert isinstance(refused, Conflict) and refused.code == "duplicate_import", refused
    assert refused.details["file"] and str(first.id) in refused.details["file"][0]
