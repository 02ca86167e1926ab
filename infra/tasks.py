"""Celery factory. Tasks take ids, run inside the Flask app context and one unit of work that
commits when the task returns. With no broker configured, tasks run in-process (eagerly)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.schedules import BaseSchedule
from flask import Flask
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.orm import Session

from infra.db import after_commit, db
from infra.errors import Unavailable, log_failure

log = logging.getLogger(__name__)


class UnitOfWorkTask(Task):
    """Each run gets a fresh session, committed on success and rolled back on failure."""

    abstract = True
    typing = False  # `session` is injected here, not sent by callers
    flask_app: Flask | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        assert self.flask_app is not None, "create the app before running tasks"
        with self.flask_app.app_context():
            with db.unit_of_work() as session:
                return self.run(session, *args, **kwargs)


celery = Celery("jieyou", task_cls=UnitOfWorkTask)


def init_celery(app: Flask, broker_url: str, result_backend: str, beat_schedule: dict[str, Any],
                timezone: str = "Asia/Shanghai") -> Celery:
    """`timezone` is the county's (the `local_timezone` setting): beat reads crontab hours in it, and
    the jobs label their day with the same calendar (`infra.clock.local_date`), so they agree."""
    UnitOfWorkTask.flask_app = app
    celery.conf.update(
        broker_url=broker_url or "memory://",
        result_backend=result_backend or None,
        task_always_eager=not broker_url,
        task_eager_propagates=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        timezone=timezone,
        enable_utc=True,
        beat_schedule=beat_schedule,
        broker_connection_retry_on_startup=True,
    )
    celery.__dict__.pop("timezone", None)  # cached from the setting; a second app may name another zone
    for entry in beat_schedule.values():  # read in our timezone, whichever Celery app is "current"
        if isinstance(entry["schedule"], BaseSchedule):
            entry["schedule"].app = celery
            entry["schedule"].__dict__.pop("tz", None)
    app.extensions["celery"] = celery
    return celery


def enqueue_after_commit(session: Session, task: Task, *args: Any, required: bool = False,
                         if_refused: Callable[[Session], None] | None = None) -> None:
    """Send `task` once `session` commits (`infra.db.after_commit`).

    A broker that refuses the message (down, unreachable) is a 503 `queue_unavailable`, in the
    reader's language. Most jobs only follow from what the request committed and a scheduled sweep
    runs them anyway (awards due, imports), so by default that is only logged. `required`: the
    request's answer is that the job was queued, so the refusal becomes its answer instead of a
    false "queued". The request's own work is committed by then (its audit record): `if_refused`
    gets a unit of work of its own to record that the job never ran."""

    def send() -> None:
        try:
            task.apply_async(args)
        except BrokerError as exc:
            if if_refused is not None:
                try:
                    with db.unit_of_work() as other:
                        if_refused(other)
                except Exception:  # the refusal is still the answer
                    log_failure(log, "could not record that %s was not queued", task.name)
            raise Unavailable("The job could not be queued: the job queue is unavailable. Nothing was started; "
                              "try again in a few minutes.", code="queue_unavailable") from exc

    after_commit(session, send, required=required)
