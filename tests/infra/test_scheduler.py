"""The embedded default runs the beat schedule in-process, with Celery's own schedule objects."""
from __future__ import annotations

import datetime as dt
import threading

from celery import Celery
from celery.schedules import schedule

from infra.scheduler import start_inprocess_beat


def test_due_jobs_run_in_process_and_a_failing_one_does_not_stop_the_others():
    app = Celery("beat-test", broker="memory://")
    app.conf.task_always_eager = True
    ran = threading.Event()

    @app.task(name="beat-test.ok")
    def ok() -> None:
        ran.set()

    @app.task(name="beat-test.fails")
    def fails() -> None:
        raise RuntimeError("boom")

    app.conf.beat_schedule = {
        "fails": {"task": "beat-test.fails", "schedule": schedule(dt.timedelta(milliseconds=50))},
        "ok": {"task": "beat-test.ok", "schedule": schedule(dt.timedelta(milliseconds=50))},
    }
    stop = threading.Event()
    thread = start_inprocess_beat(app, poll_seconds=0.05, stop=stop)
    try:
        assert ran.wait(timeout=5)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
