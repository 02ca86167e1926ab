"""Application wiring: the app factory, WSGI and Celery entries, and the command-line tool."""
