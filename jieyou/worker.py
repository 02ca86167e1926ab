"""Celery entry: `celery -A jieyou.worker:celery worker` and `celery -A jieyou.worker:celery beat`.

Both need CELERY_BROKER_URL: without it Celery falls back to a broker in the process's own memory,
so a worker would wait on a queue nothing sends to and beat would send the nightly schedule there,
both running for ever and doing nothing. (JOBS_IN_PROCESS does not change that: it lets the web
server run jobs in its requests, and a worker then has nothing to do.)"""
import os

from infra.config import ConfigurationError

if not os.environ.get("CELERY_BROKER_URL"):
    raise ConfigurationError("CELERY_BROKER_URL is not set: celery worker and beat need the broker the web "
                             "servers send jobs to (redis://… or amqp://…).")

from infra.tasks import celery  # noqa: E402
from jieyou.wsgi import app as _flask_app  # noqa: E402, F401  (builds the app, binds tasks to its context)

__all__ = ["celery"]
