"""Process-wide runtime settings for the long-lived service processes (gunicorn workers, Celery
workers).

Why: CPython's cyclic garbage collector starts a young-generation pass every 700 net container
allocations, and a batch of a thousand postings allocates hundreds of thousands of short-lived
tuples and dicts, almost none in cycles. Measured on the ledger's batch path (bench/ledger_bench.py),
the collector took about a sixth of the client's CPU. Freezing what exists after start-up (modules,
the app, SQLAlchemy's mappers) moves it out of every later pass, and a higher young-generation
threshold makes passes rarer; cycles are still collected.
"""
from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 10)  # full collections as often, in young passes, as by default


def tune_gc() -> None:
    """Call once the process has built its long-lived objects (after the app is created)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
