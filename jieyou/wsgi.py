"""WSGI entry for gunicorn: `gunicorn jieyou.wsgi:app`."""
from infra.runtime import tune_gc
from jieyou.app import create_app

app = create_app()
tune_gc()  # the app and its imports are long-lived: keep them out of every collection
