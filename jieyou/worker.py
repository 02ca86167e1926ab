"""Celery entry: `celery -A jieyou.worker worker` and `celery -A jieyou.worker beat`."""
from infra.tasks import celery
from jieyou.wsgi import app  # noqa: F401  (builds the app, binds tasks to its context)

__all__ = ["celery"]
