"""Embedded-mode stand-in for `celery beat`: a daemon thread that runs the same beat schedule
in-process, using Celery's own schedule objects to decide when each entry is due. Production
runs the real `celery beat` process instead."""
from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery

from infra.errors import log_failure

log = logging.getLogger(__name__)


def start_inprocess_beat(celery: Celery, poll_seconds: float = 30.0,
                         stop: threading.Event | None = None) -> threading.Thread:
    """Runs until the process ends, or until `stop` is set."""
    stop = stop or threading.Event()
    schedule: dict[str, Any] = celery.conf.beat_schedule or {}
    last_run: dict[str, Any] = {name: celery.now() for name in schedule}

    def loop() -> None:
        while not stop.is_set():
            for name, entry in schedule.items():
                due, _next = entry["schedule"].is_due(last_run[name])
                if due:
                    last_run[name] = celery.now()
                    try:
                        celery.tasks[entry["task"]].apply(args=entry.get("args", ()))
                        log.info("scheduled job %s ran", name)
                    except Exception:  # a failing job must not stop the others
                        log_failure(log, "scheduled job %s failed", name)
            stop.wait(poll_seconds)

    thread = threading.Thread(target=loop, name="jieyou-beat", daemon=True)
    thread.start()
    return thread
