"""Shared infrastructure: configuration, database session and unit of work, Celery factory,
errors, hashing and authentication primitives. Imports no domain package."""
