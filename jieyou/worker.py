"""Celery entry: `celery -A jieyou.worker:celery worker` and `celery -A jieyou.worker:celery beat`."""
from infra.tasks import celery
from jieyou.wsgi import app as _flask_app  # noqa: F401  (builds the app, binds tasks to its context)

__all__ = ["celery"]
