"""WSGI entry for gunicorn: `gunicorn jieyou.wsgi:app`."""
from jieyou.app import create_app

app = create_app()
